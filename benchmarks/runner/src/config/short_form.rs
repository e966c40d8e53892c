//! The short form of a configuration, the shape of the suite's first `test-config.yaml`: a
//! `load_test` block gives every scenario its load, and a scenario says the rates it sends at
//! instead of a load and a mix.
//!
//! ```yaml
//! load_test: { users: 20, spawn_rate: 10, duration: 30s }
//! run: { stacks: [nats, http-redis] }
//! scenarios:
//!   ecommerce: { order_rate: 50, error_rate: 0.1 }
//!   analytics: { event_rate: 500, batch_size: 50, concurrent_reads: 10 }
//! ```
//!
//! Each scenario becomes an open loop at the sum of its rates, with a mix weighted by them:
//!
//! - `order_rate`: `ecommerce.create_order` a second (small orders);
//! - `event_rate`: analytics events a second, one `ingest_event` each, or with `batch_size`, as
//!   `ingest_batch` of that many events (5 to 500), `event_rate / batch_size` batches a second;
//! - `concurrent_reads`: readers querying analytics once a second each, as a dashboard refreshing
//!   does, spread over `query_aggregates`, `query_timeseries` and `top_n` (an open loop has no
//!   users to hold a read each, so readers are turned into the rate they make);
//! - `file_rate`: `fileproc.process_batch` jobs a second;
//! - `error_rate`: the share of requests sent invalid, each breaking one rule.
//!
//! `users` and `spawn_rate` are locust's: users joining at `spawn_rate` a second make the load
//! grow for `users / spawn_rate` seconds, so the open loop ramps from `1 / users` of its rate to
//! all of it over that time (at most the whole `duration`). A scenario may give its own
//! `duration`, `users`, `spawn_rate`, `description`, `stacks` and `performance_expectations`.
//!
//! The stacks are those of `benchmark-config.yaml` in the same folder unless the file has its
//! own `stacks:`. What the short form became is what `results.json` records.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::BenchError;
use crate::config::{
    BenchmarkConfig, Expectations, Invalid, Load, MixEntry, PayloadSize, Phase, Profile, RunSettings,
    Scenario, StackSpec, duration_text,
};
use crate::endpoint::Endpoint;

/// The file the stacks come from when the short form has none.
const STACKS_FILE: &str = "benchmark-config.yaml";

/// The file in the short form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShortConfig {
    /// Every scenario's load unless it says otherwise.
    load_test: LoadTest,
    #[serde(default)]
    run: RunSettings,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
    scenarios: BTreeMap<String, ShortScenario>,
    /// Default: those of `benchmark-config.yaml` beside the file.
    #[serde(default)]
    stacks: Option<BTreeMap<String, StackSpec>>,
}

/// The load of every scenario.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadTest {
    users: u32,
    #[serde(default)]
    spawn_rate: f64,
    #[serde(with = "duration_text")]
    duration: Duration,
}

/// A scenario as rates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShortScenario {
    #[serde(default)]
    description: Option<String>,
    #[serde(default, with = "duration_text::option")]
    duration: Option<Duration>,
    #[serde(default)]
    users: Option<u32>,
    #[serde(default)]
    spawn_rate: Option<f64>,
    #[serde(default)]
    order_rate: Option<f64>,
    #[serde(default)]
    event_rate: Option<f64>,
    #[serde(default)]
    batch_size: Option<u32>,
    #[serde(default)]
    concurrent_reads: Option<u32>,
    #[serde(default)]
    file_rate: Option<f64>,
    #[serde(default)]
    error_rate: f64,
    #[serde(default)]
    performance_expectations: Option<Expectations>,
    #[serde(default)]
    stacks: Option<Vec<String>>,
}

/// Whether `text` is in the short form (it has a `load_test` block).
pub(super) fn is_short(text: &str) -> bool {
    serde_yaml::from_str::<serde_yaml::Value>(text).is_ok_and(|file| file.get("load_test").is_some())
}

/// The full configuration `text` stands for, its stacks read from `dir` (else the working
/// folder) when it has none; errors name `origin`, with the line where the YAML says it.
pub(super) fn parse(text: &str, origin: &str, dir: Option<&Path>) -> Result<BenchmarkConfig, BenchError> {
    let short: ShortConfig = serde_yaml::from_str(text).map_err(|error| super::yaml_error(origin, &error))?;
    let (stacks, report) = match short.stacks {
        Some(stacks) => (stacks, bench_report::ReportSettings::default()),
        None => {
            let path = dir.unwrap_or(Path::new(".")).join(STACKS_FILE);
            let other = std::fs::read_to_string(&path).map_err(|e| {
                BenchError::Config(format!("{origin}: stacks: none, and {}: {e}", path.display()))
            })?;
            let other: BenchmarkConfig = serde_yaml::from_str(&other)
                .map_err(|error| super::yaml_error(&path.display().to_string(), &error))?;
            (other.stacks, other.report)
        }
    };
    let mut scenarios = BTreeMap::new();
    for (name, scenario) in short.scenarios {
        let full = scenario.expand(short.load_test).map_err(|problem| {
            BenchError::Config(format!("{origin}: {}", problem.at(&format!("scenarios.{name}."))))
        })?;
        scenarios.insert(name, full);
    }
    Ok(BenchmarkConfig {
        run: short.run,
        profiles: short.profiles,
        mixes: BTreeMap::new(),
        scenarios,
        stacks,
        report,
    })
}

impl ShortScenario {
    /// The full scenario, with `defaults` where it says nothing.
    fn expand(self, defaults: LoadTest) -> Result<Scenario, Invalid> {
        let rate = |key: &str, value: Option<f64>| match value {
            Some(rate) if !(rate.is_finite() && rate > 0.0) => {
                Err(Invalid::from(format!("{key}: requests a second, above 0")))
            }
            _ => Ok(value),
        };
        let (orders, events, files) = (
            rate("order_rate", self.order_rate)?,
            rate("event_rate", self.event_rate)?,
            rate("file_rate", self.file_rate)?,
        );
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(Invalid::from("error_rate: the share of requests sent invalid, from 0 to 1"));
        }
        let mut mix = Vec::new();
        let mut said = Vec::new();
        if let Some(rate) = orders {
            mix.push(entry(Endpoint::CreateOrder, rate, |e| e.size = Some(PayloadSize::Small)));
            said.push(format!("{rate} orders/s"));
        }
        match (events, self.batch_size) {
            (Some(rate), None) => {
                mix.push(entry(Endpoint::IngestEvent, rate, |_| {}));
                said.push(format!("{rate} events/s"));
            }
            (Some(rate), Some(size)) if (5..=500).contains(&size) => {
                mix.push(entry(Endpoint::IngestBatch, rate / f64::from(size), |e| e.items = Some(size)));
                said.push(format!("{rate} events/s in batches of {size}"));
            }
            (Some(_), Some(_)) => return Err(Invalid::from("batch_size: from 5 to 500 events")),
            (None, Some(_)) => return Err(Invalid::from("batch_size: needs event_rate")),
            (None, None) => {}
        }
        match self.concurrent_reads {
            Some(0) => return Err(Invalid::from("concurrent_reads: at least 1")),
            Some(readers) => {
                for endpoint in [Endpoint::QueryAggregates, Endpoint::QueryTimeseries, Endpoint::TopN] {
                    mix.push(entry(endpoint, f64::from(readers) / 3.0, |_| {}));
                }
                said.push(format!("{readers} readers querying once a second"));
            }
            None => {}
        }
        if let Some(rate) = files {
            mix.push(entry(Endpoint::ProcessBatch, rate, |e| e.size = Some(PayloadSize::Small)));
            said.push(format!("{rate} file jobs/s"));
        }
        if mix.is_empty() {
            return Err(Invalid::from(
                "no rate: give order_rate, event_rate, concurrent_reads or file_rate (or a load and a mix, without load_test)",
            ));
        }
        if self.error_rate > 0.0 {
            said.push(format!("{}% invalid", self.error_rate * 100.0));
        }
        let total: f64 = mix.iter().map(|e| e.weight).sum();
        let users = self.users.unwrap_or(defaults.users);
        let spawn_rate = self.spawn_rate.unwrap_or(defaults.spawn_rate);
        let duration = self.duration.unwrap_or(defaults.duration);
        if users == 0 || !(spawn_rate.is_finite() && spawn_rate >= 0.0) || duration.is_zero() {
            return Err(Invalid::from(
                "users, spawn_rate, duration: at least 1 user, a rate of 0 or more, a duration above 0",
            ));
        }
        Ok(Scenario {
            description: self.description.unwrap_or_else(|| said.join(", ")),
            load: Load::Open {
                phases: ramp(total, users, spawn_rate, duration),
                max_in_flight: 10_000,
                arrivals: Default::default(),
            },
            mix,
            flows: Vec::new(),
            invalid_share: self.error_rate,
            faults: None,
            performance_expectations: self.performance_expectations,
            stacks: self.stacks,
            contention: None,
            convergence: None,
            outages: Vec::new(),
            archive: false,
            scale_out: None,
        })
    }
}

/// A mix entry of the catalog's `endpoint` weighted by its rate.
fn entry(endpoint: Endpoint, rate: f64, set: impl FnOnce(&mut MixEntry)) -> MixEntry {
    let mut entry = MixEntry::of(endpoint);
    entry.weight = rate;
    set(&mut entry);
    entry
}

/// The open loop's phases: ramping as `users` joining at `spawn_rate` would, then steady.
fn ramp(total: f64, users: u32, spawn_rate: f64, duration: Duration) -> Vec<Phase> {
    let steady = |duration| Phase { arrival_rate: total, ramp_to: None, duration };
    if spawn_rate <= 0.0 || users <= 1 {
        return vec![steady(duration)];
    }
    // A rate so small that the ramp outlasts any duration ramps over all of it.
    let ramp = Duration::try_from_secs_f64(f64::from(users) / spawn_rate)
        .map_or(duration, |ramp| ramp.min(duration));
    let mut phases =
        vec![Phase { arrival_rate: total / f64::from(users), ramp_to: Some(total), duration: ramp }];
    if ramp < duration {
        phases.push(steady(duration - ramp));
    }
    phases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(scenarios: &str) -> Result<BenchmarkConfig, String> {
        let text = format!(
            "load_test: {{ users: 20, spawn_rate: 10, duration: 10s }}\nstacks: {{}}\nscenarios:\n{scenarios}"
        );
        parse(&text, "t.yaml", None).map_err(|e| e.to_string())
    }

    #[test]
    fn rates_become_an_open_loop_whose_mix_they_weigh() {
        let config =
            short("  analytics: { event_rate: 500, batch_size: 50, concurrent_reads: 9, error_rate: 0.1 }\n")
                .unwrap();
        let scenario = &config.scenarios["analytics"];
        let weights: Vec<(String, f64)> = scenario.mix.iter().map(|e| (e.label(), e.weight)).collect();
        assert_eq!(
            weights,
            [
                ("analytics.ingest_batch/x50".to_string(), 10.0),
                ("analytics.query_aggregates".to_string(), 3.0),
                ("analytics.query_timeseries".to_string(), 3.0),
                ("analytics.top_n".to_string(), 3.0),
            ]
        );
        assert_eq!(scenario.mix[0].items, Some(50));
        assert_eq!(scenario.invalid_share, 0.1);
        assert!(scenario.description.contains("500 events/s in batches of 50"), "{}", scenario.description);
        // 20 users joining at 10 a second: a 2 s ramp from 1/20 of 19 requests a second, then 8 s
        // steady.
        let Load::Open { phases, .. } = &scenario.load else { panic!("{:?}", scenario.load) };
        assert_eq!(phases.len(), 2);
        assert_eq!((phases[0].arrival_rate, phases[0].ramp_to), (19.0 / 20.0, Some(19.0)));
        assert_eq!(
            (phases[0].duration, phases[1].duration),
            (Duration::from_secs(2), Duration::from_secs(8))
        );
        assert_eq!(scenario.load.duration(), Duration::from_secs(10));

        let slow = short("  shop: { order_rate: 50, spawn_rate: 1e-300 }\n").unwrap();
        assert_eq!(slow.scenarios["shop"].load.duration(), Duration::from_secs(10), "a ramp of all of it");
        let orders = short("  shop: { order_rate: 50, spawn_rate: 0, duration: 3s }\n").unwrap();
        let Load::Open { phases, .. } = &orders.scenarios["shop"].load else { panic!() };
        assert_eq!((phases.len(), phases[0].arrival_rate), (1, 50.0), "no ramp without a spawn rate");
        assert_eq!(orders.scenarios["shop"].load.duration(), Duration::from_secs(3));
    }

    #[test]
    fn what_the_short_form_refuses_is_named_by_key() {
        let refused = |scenarios: &str| short(scenarios).unwrap_err();
        assert!(refused("  s: { batch_size: 50 }\n").contains("scenarios.s.batch_size: needs event_rate"));
        assert!(refused("  s: { event_rate: 5, batch_size: 501 }\n").contains("batch_size: from 5 to 500"));
        assert!(refused("  s: { order_rate: -1 }\n").contains("scenarios.s.order_rate"));
        assert!(refused("  s: { order_rate: 1, error_rate: 2 }\n").contains("scenarios.s.error_rate"));
        assert!(refused("  s: { error_rate: 0.1 }\n").contains("no rate"));
        let typo = refused("  s: { order_rat: 5 }\n");
        assert!(typo.contains("t.yaml:4:") && typo.contains("unknown field `order_rat`"), "{typo}");
        let no_stacks = parse(
            "load_test: { users: 1, duration: 1s }\nscenarios: {}\n",
            "t.yaml",
            Some(Path::new("/nonexistent")),
        );
        assert!(
            no_stacks
                .unwrap_err()
                .to_string()
                .contains("stacks: none, and /nonexistent/benchmark-config.yaml")
        );
    }
}
