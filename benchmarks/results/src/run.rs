//! A whole run: its environment and settings, every scenario on every stack, the limits checked.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ResultsError;
use std::collections::BTreeMap;

use crate::ErrorKind;
use crate::measurement::{EndpointResult, Measurement, Spread, Summary};
use crate::percentiles::Percentiles;
use crate::settings::{Expectations, Faults, Limits, Load, MixEntry, RunSettings};
use crate::system::Environment;

/// The version of `results.json`'s layout this crate writes. It reads this one and every older
/// one it has shipped (1 is the first).
pub const SCHEMA: u32 = 1;

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    /// Layout version ([`SCHEMA`]).
    pub schema: u32,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// When it finished.
    pub finished: String,
    /// The profile used, if any.
    pub profile: Option<String>,
    /// The machine and software.
    pub environment: Environment,
    /// The settings the run used (after the profile and the environment).
    pub settings: RunSettings,
    /// Per scenario, per stack.
    pub scenarios: Vec<ScenarioResult>,
    /// Each `performance_expectations` limit, checked.
    pub expectations: Vec<ExpectationCheck>,
    /// What a reader should know before trusting the figures.
    pub warnings: Vec<String>,
}

/// One scenario on every stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Its name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The load, as run (after any duration override).
    pub load: Load,
    /// The mix.
    pub mix: Vec<MixEntry>,
    /// The user journeys drawn among the mix's entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<crate::settings::Flow>,
    /// The share of invalid requests.
    pub invalid_share: f64,
    /// The injected faults.
    pub faults: Option<Faults>,
    /// The limits it must meet.
    pub expectations: Option<Expectations>,
    /// Per stack.
    pub stacks: Vec<StackResult>,
}

/// One stack's measurements of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackResult {
    /// Its name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// `nats` or `http`.
    pub transport: String,
    /// One per repetition.
    pub repetitions: Vec<Measurement>,
    /// Medians and spread over the repetitions.
    pub summary: Summary,
    /// Its processes placed on CPUs of their own (`cpus` in the config): (process, CPU list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<(String, String)>,
    /// For a validation-off control: the stack it copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unvalidated_control_of: Option<String>,
    /// For a secured variant (TLS and credentials): the plain stack it copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secured_variant_of: Option<String>,
    /// For one instance count of a scale-out (`{stack}@{count}`): which stack, and how it was
    /// scaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaled: Option<Scaled>,
    /// Whether it ran elsewhere (an external target, no processes of the runner's): its
    /// processes' CPU and memory were not measured.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
}

/// One instance count of a scale-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaled {
    /// The stack scaled.
    pub of: String,
    /// How many instances of its process ran.
    pub instances: u32,
    /// The process run as many instances (`services`, `api`, `worker`).
    pub process: String,
    /// Whether its instances ran behind the runner's load balancer (HAProxy).
    pub balanced: bool,
}

/// One limit of `performance_expectations`, checked against a stack's medians.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpectationCheck {
    /// The scenario.
    pub scenario: String,
    /// The stack.
    pub stack: String,
    /// `p50_ms` (and `p90_ms`, `p95_ms`, `p99_ms`, `max_ms`), `min_rps`,
    /// `max_unexpected_error_rate`, `max_error_rates[KIND]`, each `of LABEL` when it is one kind of
    /// request's or one flow's; or an invariant (`orders_lost`...).
    pub metric: String,
    /// The limit.
    pub limit: f64,
    /// The median measured.
    pub value: f64,
    /// Whether it held.
    pub held: bool,
}

impl ExpectationCheck {
    /// The checks of `limits` against the median of the `repetitions`: on all the answers, and
    /// on each kind of request (or flow) the limits name.
    pub fn all(scenario: &str, stack: &str, limits: &Expectations, repetitions: &[Measurement]) -> Vec<Self> {
        let at = (scenario, stack);
        let mut checks = Self::of(at, None, &limits.limits, repetitions, |m| Some(Figures::overall(m)));
        for (label, own) in &limits.endpoints {
            checks.extend(Self::of(at, Some(label), own, repetitions, |m| {
                let endpoint = m.endpoints.iter().chain(&m.flows).find(|e| e.name == *label)?;
                Some(Figures::endpoint(endpoint, m.duration_s))
            }));
        }
        checks
    }

    /// The checks of `limits` against what `figures` picks of each repetition (`label` names what
    /// they are of, when not all the answers).
    fn of(
        (scenario, stack): (&str, &str),
        label: Option<&str>,
        limits: &Limits,
        repetitions: &[Measurement],
        figures: impl Fn(&Measurement) -> Option<Figures<'_>>,
    ) -> Vec<Self> {
        let measured: Vec<Figures<'_>> = repetitions.iter().filter_map(figures).collect();
        if measured.is_empty() {
            return Vec::new();
        }
        let median = |pick: &dyn Fn(&Figures<'_>) -> f64| Spread::of(measured.iter().map(pick)).median;
        let check = |metric: &str, limit: Option<f64>, value: f64, at_most: bool| {
            limit.map(|limit| Self {
                scenario: scenario.to_string(),
                stack: stack.to_string(),
                metric: label.map_or_else(|| metric.to_string(), |label| format!("{metric} of {label}")),
                limit,
                value,
                held: if at_most { value <= limit } else { value >= limit },
            })
        };
        let ms = |pick: fn(&Percentiles) -> u64| move |f: &Figures<'_>| pick(f.latency) as f64 / 1000.0;
        let mut checks: Vec<Self> = [
            check("p50_ms", limits.p50_ms, median(&ms(|p| p.p50)), true),
            check("p90_ms", limits.p90_ms, median(&ms(|p| p.p90)), true),
            check("p95_ms", limits.p95_ms, median(&ms(|p| p.p95)), true),
            check("p99_ms", limits.p99_ms, median(&ms(|p| p.p99)), true),
            check("max_ms", limits.max_ms, median(&ms(|p| p.max)), true),
            check("min_rps", limits.min_rps, median(&|f| f.rps), false),
            check(
                "max_unexpected_error_rate",
                limits.max_unexpected_error_rate,
                median(&|f| f.unexpected_rate()),
                true,
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (kind, limit) in &limits.max_error_rates {
            let value = median(&|f| f.rate_of(kind));
            checks.extend(check(&format!("max_error_rates[{kind}]"), Some(*limit), value, true));
        }
        checks
    }

    /// The checks of what must hold whatever the speed: no unit oversold or gone under
    /// contention, every order counted once in analytics (the worst repetition counts).
    pub fn invariants(scenario: &str, stack: &str, repetitions: &[Measurement]) -> Vec<Self> {
        let worst = |pick: &dyn Fn(&Measurement) -> Option<u64>| {
            repetitions.iter().filter_map(pick).max().map(|worst| worst as f64)
        };
        let check = |metric: &str, value: Option<f64>| {
            value.map(|value| Self {
                scenario: scenario.to_string(),
                stack: stack.to_string(),
                metric: metric.to_string(),
                limit: 0.0,
                value,
                held: value <= 0.0,
            })
        };
        [
            check("oversold_units", worst(&|m| m.contention.as_ref().map(|c| c.oversold_units))),
            check("vanished_units", worst(&|m| m.contention.as_ref().map(|c| c.vanished_units))),
            check(
                "unreadable_stock",
                worst(&|m| {
                    m.contention
                        .as_ref()
                        .map(|c| c.items.iter().filter(|i| i.remaining.is_none()).count() as u64)
                }),
            ),
            // With outages, the same figures are checked as faults.acknowledged_lost and
            // faults.duplicated (once is enough).
            check(
                "orders_lost",
                worst(&|m| {
                    m.convergence.as_ref().filter(|_| m.faults.is_none()).map(|c| c.lost + c.not_recounted)
                }),
            ),
            check(
                "orders_counted_twice",
                worst(&|m| m.convergence.as_ref().filter(|_| m.faults.is_none()).map(|c| c.counted_twice)),
            ),
            check("faults.acknowledged_lost", worst(&|m| m.faults.as_ref().map(|f| f.acknowledged_lost))),
            check("faults.duplicated", worst(&|m| m.faults.as_ref().map(|f| f.duplicated))),
            // 1 for a measurement whose stack did not recover by itself from an outage.
            check("faults.not_recovered", worst(&|m| m.faults.as_ref().map(|f| u64::from(!f.recovered)))),
            // Orders acknowledged that the stack's archive never got.
            check("archive.missing", worst(&|m| m.archive.as_ref().map(|a| a.missing))),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// One line saying how it went.
    pub fn describe(&self) -> String {
        let verdict = if self.held { "held" } else { "MISSED" };
        format!(
            "{} on {}: {} {:.3} against a limit of {:.3}: {verdict}",
            self.scenario, self.stack, self.metric, self.value, self.limit
        )
    }
}

/// What a set of answers measured, for its limits.
struct Figures<'a> {
    latency: &'a Percentiles,
    /// Answers a second (a stepped load's: its highest sustained step's).
    rps: f64,
    answered: u64,
    unexpected: &'a BTreeMap<ErrorKind, u64>,
}

impl<'a> Figures<'a> {
    fn overall(m: &'a Measurement) -> Self {
        Self {
            latency: &m.latency_us,
            rps: m.sustained_rps(),
            answered: m.answered,
            unexpected: &m.unexpected_errors,
        }
    }

    fn endpoint(e: &'a EndpointResult, duration_s: f64) -> Self {
        let rps = e.answered as f64 / duration_s.max(1e-9);
        Self { latency: &e.latency_us, rps, answered: e.answered, unexpected: &e.unexpected_errors }
    }

    fn unexpected_rate(&self) -> f64 {
        self.unexpected.values().sum::<u64>() as f64 / self.answered.max(1) as f64
    }

    /// Unexpected errors of `kind` (`transport:timeout`, or a whole class: `transport`) per answer.
    fn rate_of(&self, kind: &str) -> f64 {
        let matches =
            |k: &ErrorKind| if kind.contains(':') { k.to_string() == kind } else { k.class() == kind };
        let n: u64 = self.unexpected.iter().filter(|(k, _)| matches(k)).map(|(_, n)| n).sum();
        n as f64 / self.answered.max(1) as f64
    }
}

impl RunResults {
    /// Writes `results.json`, the verdict as `junit.xml` ([`crate::verdict`]) and the CSV exports
    /// into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), ResultsError> {
        let path = dir.join("results.json");
        let json = serde_json::to_vec_pretty(self)
            .map_err(|source| ResultsError::Json { path: path.clone(), source })?;
        std::fs::write(&path, json).map_err(|source| ResultsError::Io { path, source })?;
        let junit = dir.join("junit.xml");
        std::fs::write(&junit, crate::verdict::junit(self))
            .map_err(|source| ResultsError::Io { path: junit, source })?;
        crate::csv::write(self, dir)
    }

    /// Reads a `results.json` of this layout or an older one.
    pub fn read(path: &Path) -> Result<Self, ResultsError> {
        let text =
            std::fs::read(path).map_err(|source| ResultsError::Io { path: path.to_path_buf(), source })?;
        let results: Self = serde_json::from_slice(&text)
            .map_err(|source| ResultsError::Json { path: path.to_path_buf(), source })?;
        if results.schema > SCHEMA {
            return Err(ResultsError::Newer { path: path.to_path_buf(), schema: results.schema });
        }
        Ok(results)
    }
}
