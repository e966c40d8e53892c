//! What the figures say: stacks ranked per scenario, saturation knees, where the time goes (from
//! the control stacks), and deltas against a baseline with a noise band.

use std::collections::BTreeMap;
use std::path::Path;

use bench_results::{Measurement, RunResults, ScenarioResult, StackResult};

/// A stack's place in a scenario.
#[derive(Debug, Clone)]
pub struct Ranked<'a> {
    /// The stack.
    pub stack: &'a StackResult,
    /// Its median throughput over the fastest's.
    pub ratio: f64,
}

/// The stacks of a scenario, fastest first (by median answers per second).
pub fn ranking(scenario: &ScenarioResult) -> Vec<Ranked<'_>> {
    let mut stacks: Vec<&StackResult> = scenario.stacks.iter().collect();
    stacks.sort_by(|a, b| b.summary.rps.median.total_cmp(&a.summary.rps.median));
    let best = stacks.first().map_or(1.0, |s| s.summary.rps.median.max(1e-9));
    stacks.into_iter().map(|stack| Ranked { stack, ratio: stack.summary.rps.median / best }).collect()
}

/// Neighbours in a ranking that this run does not tell apart: the slower one's best repetition is
/// at least as fast as the faster one's worst (or there is one repetition only).
pub fn not_told_apart(scenario: &ScenarioResult) -> Vec<(&str, &str)> {
    let ranking = ranking(scenario);
    ranking
        .windows(2)
        .filter(|pair| {
            let (a, b) = (&pair[0].stack.summary, &pair[1].stack.summary);
            a.repetitions < 2 || b.repetitions < 2 || b.rps.max >= a.rps.min
        })
        .map(|pair| (pair[0].stack.name.as_str(), pair[1].stack.name.as_str()))
        .collect()
}

/// The repetition that stands for a stack in charts: the one with the median p99.
pub fn representative(stack: &StackResult) -> Option<&Measurement> {
    let mut reps: Vec<&Measurement> = stack.repetitions.iter().collect();
    reps.sort_by_key(|m| m.latency_us.p99);
    reps.get(reps.len().saturating_sub(1) / 2).copied()
}

/// Where a stepped load saturated a stack: the first step that was not sustained (see
/// [`bench_results::Sustained`]); in results from before steps said so, the first step whose p99
/// is over four times the first step's or whose achieved rate is under 90% of the offered one.
/// (offered rate, p99 ms).
pub fn knee(m: &Measurement) -> Option<(f64, f64)> {
    let first = m.steps.first()?.p99_us.max(1) as f64;
    let judged = m.steps.iter().any(|s| s.sustained.is_some());
    m.steps
        .iter()
        .find(|s| match s.sustained {
            Some(sustained) => !sustained,
            None => !judged && (s.p99_us as f64 > 4.0 * first || s.achieved_rps < 0.9 * s.target_rps),
        })
        .map(|s| (s.target_rps, s.p99_us as f64 / 1000.0))
}

/// What a stack kept of its `baseline` under the faults and invalid requests of
/// `error_resilience` (the same mix and users): the seed's "RPS maintained during failures".
#[derive(Debug, Clone, PartialEq)]
pub struct Resilience {
    /// The stack.
    pub stack: String,
    /// Answers per second in `baseline`, and under faults (medians of the repetitions).
    pub rps: (f64, f64),
    /// Successful answers per second in `baseline`, and under faults: fast error replies do not
    /// count as throughput here.
    pub ok_rps: (f64, f64),
    /// p99 in milliseconds in `baseline`, and under faults.
    pub p99_ms: (f64, f64),
}

impl Resilience {
    /// The share of its baseline throughput the stack kept.
    pub fn kept(&self) -> f64 {
        if self.rps.0 > 0.0 { self.rps.1 / self.rps.0 } else { 0.0 }
    }

    /// The share of its baseline successes per second the stack kept.
    pub fn ok_kept(&self) -> f64 {
        if self.ok_rps.0 > 0.0 { self.ok_rps.1 / self.ok_rps.0 } else { 0.0 }
    }

    /// Milliseconds the faults added to the p99.
    pub fn p99_added_ms(&self) -> f64 {
        self.p99_ms.1 - self.p99_ms.0
    }

    /// Its figures as every report writes them, after the stack's name: baseline answers/s, under
    /// faults, kept, successes/s kept, p99 baseline ms, under faults, added.
    pub fn figures(&self) -> [String; 7] {
        [
            format!("{:.0}", self.rps.0),
            format!("{:.0}", self.rps.1),
            format!("{:.2}x", self.kept()),
            format!("{:.2}x", self.ok_kept()),
            format!("{:.2}", self.p99_ms.0),
            format!("{:.2}", self.p99_ms.1),
            format!("{:+.2}", self.p99_added_ms()),
        ]
    }
}

/// Every stack that ran both `baseline` and `error_resilience`, in the run's order.
pub fn resilience(r: &bench_results::RunResults) -> Vec<Resilience> {
    let scenario = |name: &str| r.scenarios.iter().find(|s| s.name == name);
    let (Some(baseline), Some(faulty)) = (scenario("baseline"), scenario("error_resilience")) else {
        return Vec::new();
    };
    baseline
        .stacks
        .iter()
        .filter_map(|calm| {
            let under = faulty.stacks.iter().find(|s| s.name == calm.name)?;
            let ok_rps = |stack: &bench_results::StackResult| {
                let per_second = stack
                    .repetitions
                    .iter()
                    .filter(|m| m.duration_s > 0.0)
                    .map(|m| m.ok as f64 / m.duration_s);
                bench_results::Spread::of(per_second).median
            };
            Some(Resilience {
                stack: calm.name.clone(),
                rps: (calm.summary.rps.median, under.summary.rps.median),
                ok_rps: (ok_rps(calm), ok_rps(under)),
                p99_ms: (calm.summary.p99_us.median / 1000.0, under.summary.p99_us.median / 1000.0),
            })
        })
        .collect()
}

/// Two kinds of stack copies the configuration declares, each isolating one choice: the same
/// services, stores and transport with the choice and without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// A stack beside its validation-off control (`unvalidated_control_of`): what validation costs.
    Validation,
    /// A secured variant (`secured_variant_of`: TLS and passwords, on brokers of its own) beside the
    /// plain stack it copies: what security costs.
    Security,
}

impl Pairing {
    /// For a stack that is a copy of this kind: the stack with the choice and the one without, out
    /// of `copy` and the stack it names.
    fn pair<'a>(
        self,
        copy: &'a StackResult,
        stacks: &'a [StackResult],
    ) -> Option<(&'a StackResult, &'a StackResult)> {
        let named = match self {
            Pairing::Validation => copy.unvalidated_control_of.as_deref()?,
            Pairing::Security => copy.secured_variant_of.as_deref()?,
        };
        let named = stacks.iter().find(|s| s.name == named)?;
        Some(match self {
            Pairing::Validation => (named, copy),
            Pairing::Security => (copy, named),
        })
    }

    /// The choice, as "where the time goes" names it.
    fn choice(self, plain: &str) -> String {
        match self {
            Pairing::Validation => format!("validation, end to end (on {plain})"),
            Pairing::Security => format!("TLS and passwords to every broker (on {plain})"),
        }
    }
}

/// What one choice costs a stack end to end: the stack with it beside the same stack without it,
/// in one closed-loop scenario, medians of the repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct PairCost {
    /// What is compared.
    pub pairing: Pairing,
    /// The scenario.
    pub scenario: String,
    /// The stack with the choice (validating; secured).
    pub with: String,
    /// The stack without it (the validation-off control; the plain stack).
    pub without: String,
    /// Answers per second: with, without.
    pub rps: (f64, f64),
    /// Median latency in milliseconds: with, without.
    pub p50_ms: (f64, f64),
    /// p99 in milliseconds: with, without.
    pub p99_ms: (f64, f64),
    /// CPU of the stack and its brokers per answer, microseconds: with, without.
    pub cpu_us: (f64, f64),
    /// Validation per request as the services timed it (`$SRV.STATS`, `GET /stats`), for
    /// [`Pairing::Validation`].
    pub timed_us: Option<f64>,
}

impl PairCost {
    /// The throughput with the choice as a share of that without.
    pub fn kept(&self) -> f64 {
        if self.rps.1 > 0.0 { self.rps.0 / self.rps.1 } else { 0.0 }
    }

    /// Its figures as every report writes them, after the scenario and the stack: answers/s with,
    /// without, with/without, p50 ms with, without, p99 ms with, without, CPU µs per request added,
    /// and for validation the µs per request the services timed.
    pub fn figures(&self) -> Vec<String> {
        let mut figures = vec![
            format!("{:.0}", self.rps.0),
            format!("{:.0}", self.rps.1),
            format!("{:.2}x", self.kept()),
            format!("{:.2}", self.p50_ms.0),
            format!("{:.2}", self.p50_ms.1),
            format!("{:.2}", self.p99_ms.0),
            format!("{:.2}", self.p99_ms.1),
            format!("{:+.1}", self.cpu_us.0 - self.cpu_us.1),
        ];
        if self.pairing == Pairing::Validation {
            figures.push(self.timed_us.map_or_else(|| "-".to_string(), |us| format!("{us:.1}")));
        }
        figures
    }
}

/// Every pair of `pairing`'s kind, in each closed-loop scenario that ran both.
pub fn pair_costs(r: &bench_results::RunResults, pairing: Pairing) -> Vec<PairCost> {
    let mut costs = Vec::new();
    for scenario in r.scenarios.iter().filter(|s| matches!(s.load, bench_results::Load::Closed { .. })) {
        for copy in &scenario.stacks {
            let Some((with, without)) = pairing.pair(copy, &scenario.stacks) else { continue };
            let (a, b) = (&with.summary, &without.summary);
            costs.push(PairCost {
                pairing,
                scenario: scenario.name.clone(),
                with: with.name.clone(),
                without: without.name.clone(),
                rps: (a.rps.median, b.rps.median),
                p50_ms: (a.p50_us.median / 1000.0, b.p50_us.median / 1000.0),
                p99_ms: (a.p99_us.median / 1000.0, b.p99_us.median / 1000.0),
                cpu_us: (a.cpu_ms_per_1000.median, b.cpu_ms_per_1000.median),
                timed_us: match pairing {
                    Pairing::Validation => validation_per_request(with).map(|(us, _)| us),
                    Pairing::Security => None,
                },
            });
        }
    }
    costs
}

/// The load generator's own ceiling per transport: what it got from each raw echo (a responder
/// that only answers) in the first scenario that ran one, as (scenario, stack, answers/s).
pub fn generator_ceilings(r: &bench_results::RunResults) -> Vec<(String, String, f64)> {
    let Some(scenario) = r
        .scenarios
        .iter()
        .find(|s| s.stacks.iter().any(|stack| bench_results::ECHO_STACKS.contains(&stack.name.as_str())))
    else {
        return Vec::new();
    };
    scenario
        .stacks
        .iter()
        .filter(|stack| bench_results::ECHO_STACKS.contains(&stack.name.as_str()))
        .map(|stack| (scenario.name.clone(), stack.name.clone(), stack.summary.rps.median))
        .collect()
}

/// One component of "where the time goes": what one architectural choice costs per request.
#[derive(Debug, Clone)]
pub struct Component {
    /// What is compared.
    pub what: String,
    /// The stack with the choice, and the one without.
    pub with: String,
    /// The stack without.
    pub without: String,
    /// Difference in median latency, milliseconds.
    pub latency_ms: f64,
    /// Difference in CPU (stack and brokers) per request, microseconds.
    pub cpu_us: f64,
}

/// The differences the control stacks isolate, in one scenario (absent stacks are skipped).
pub fn breakdown(scenario: &ScenarioResult) -> Vec<Component> {
    let find = |name: &str| scenario.stacks.iter().find(|s| s.name == name);
    let pairs = [
        ("natsrpc over raw NATS (framework, validation, JSON)", "nats", "nats-raw-echo"),
        ("axum and the services over raw HTTP (framework, validation, JSON)", "http-memory", "http-raw-echo"),
        ("NATS instead of direct HTTP (transport)", "nats", "http-memory"),
        ("Redis instead of memory, on NATS (state store)", "nats-redis", "nats"),
        ("Redis instead of memory, on HTTP (state store)", "http-redis", "http-memory"),
        ("RabbitMQ RPC to workers instead of serving in the API (broker hop)", "http-rabbitmq", "http-redis"),
    ];
    let controls: Vec<(String, &str, &str)> = [Pairing::Validation, Pairing::Security]
        .into_iter()
        .flat_map(|pairing| {
            scenario.stacks.iter().filter_map(move |copy| {
                let (with, without) = pairing.pair(copy, &scenario.stacks)?;
                let plain = if pairing == Pairing::Validation { &with.name } else { &without.name };
                Some((pairing.choice(plain), with.name.as_str(), without.name.as_str()))
            })
        })
        .collect();
    let pairs = pairs.iter().map(|(what, with, without)| (what.to_string(), *with, *without)).chain(controls);
    pairs
        .filter_map(|(what, with, without)| {
            let (a, b) = (find(with)?, find(without)?);
            Some(Component {
                what,
                with: with.to_string(),
                without: without.to_string(),
                latency_ms: (a.summary.p50_us.median - b.summary.p50_us.median) / 1000.0,
                cpu_us: a.summary.cpu_ms_per_1000.median - b.summary.cpu_ms_per_1000.median,
            })
        })
        .collect()
}

/// Validation per request on a stack: time (µs) and share of the service's time, weighted by the
/// requests each endpoint served.
pub fn validation_per_request(stack: &StackResult) -> Option<(f64, f64)> {
    let m = representative(stack)?;
    let requests: u64 = m.validation.iter().map(|v| v.requests).sum();
    if requests == 0 {
        return None;
    }
    let weigh = |f: fn(&bench_results::ValidationResult) -> f64| {
        m.validation.iter().map(|v| f(v) * v.requests as f64).sum::<f64>() / requests as f64
    };
    let validation = weigh(|v| v.validation_us);
    let processing = weigh(|v| v.processing_us);
    Some((validation, if processing > 0.0 { validation / processing } else { 0.0 }))
}

/// Where a stack's CPU per answer goes, in microseconds (medians of the repetitions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSplit {
    /// The stack's own processes.
    pub stack_us: f64,
    /// The brokers and stores it uses.
    pub brokers_us: f64,
    /// The load generator: on a shared machine, taken from the other two.
    pub generator_us: f64,
}

/// Where `stack`'s CPU per answer went; `None` when nothing was answered.
pub fn cpu_split(stack: &StackResult) -> Option<CpuSplit> {
    let per_answer = |part: fn(&bench_results::CpuCost) -> f64| {
        let values = stack
            .repetitions
            .iter()
            .filter(|m| m.answered > 0)
            .map(|m| part(&m.cpu) * 1e6 / m.answered as f64);
        bench_results::Spread::of(values).median
    };
    stack.repetitions.iter().any(|m| m.answered > 0).then(|| CpuSplit {
        stack_us: per_answer(|c| c.stack_s),
        brokers_us: per_answer(|c| c.brokers_s),
        generator_us: per_answer(|c| c.generator_s),
    })
}

/// A figure against the baseline's.
#[derive(Debug, Clone)]
pub struct Delta {
    /// The scenario.
    pub scenario: String,
    /// The stack.
    pub stack: String,
    /// `throughput` or `p99`.
    pub figure: String,
    /// The baseline's median.
    pub before: f64,
    /// This run's median.
    pub after: f64,
    /// Change as a share of the baseline (positive: more).
    pub change: f64,
    /// The noise band: the larger relative spread of the two runs' repetitions.
    pub noise: f64,
    /// Worse by more than the tolerance and the noise.
    pub regression: bool,
}

/// Every scenario x stack both runs measured: throughput and p99 against the baseline's.
pub fn compare(run: &RunResults, baseline: &RunResults, tolerance: f64) -> Vec<Delta> {
    let mut deltas = Vec::new();
    for scenario in &run.scenarios {
        let Some(before) = baseline.scenarios.iter().find(|s| s.name == scenario.name) else { continue };
        for stack in &scenario.stacks {
            let Some(old) = before.stacks.iter().find(|s| s.name == stack.name) else { continue };
            let (new, old) = (&stack.summary, &old.summary);
            let figures = [
                ("throughput (answers/s)", old.rps, new.rps, false),
                ("p99 latency (ms)", old.p99_us, new.p99_us, true),
            ];
            for (figure, b, a, lower_is_better) in figures {
                if b.median == 0.0 {
                    continue;
                }
                let change = (a.median - b.median) / b.median;
                let noise = b.relative_range().max(a.relative_range());
                let worse = if lower_is_better { change } else { -change };
                let scale = if figure.starts_with("p99") { 1000.0 } else { 1.0 };
                deltas.push(Delta {
                    scenario: scenario.name.clone(),
                    stack: stack.name.clone(),
                    figure: figure.to_string(),
                    before: b.median / scale,
                    after: a.median / scale,
                    change,
                    noise,
                    regression: worse > tolerance.max(noise),
                });
            }
        }
    }
    deltas
}

/// Criterion's latest point estimates (mean, ns) by benchmark id, from `target/criterion`.
pub fn criterion_estimates(dir: &Path) -> BTreeMap<String, f64> {
    let mut found = BTreeMap::new();
    let Ok(groups) = std::fs::read_dir(dir) else { return found };
    let mut stack: Vec<std::path::PathBuf> = groups.filter_map(|e| e.ok().map(|e| e.path())).collect();
    while let Some(path) = stack.pop() {
        let estimates = path.join("new/estimates.json");
        if estimates.exists() {
            let value: Option<serde_json::Value> =
                std::fs::read(&estimates).ok().and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(mean) = value.as_ref().and_then(|v| v["mean"]["point_estimate"].as_f64()) {
                let id = path.strip_prefix(dir).map(|p| p.display().to_string()).unwrap_or_default();
                found.insert(id, mean);
            }
        } else if path.is_dir()
            && path.file_name().is_some_and(|n| n != "report")
            && let Ok(children) = std::fs::read_dir(&path)
        {
            stack.extend(children.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()));
        }
    }
    found
}
