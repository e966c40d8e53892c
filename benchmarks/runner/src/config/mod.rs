//! `config/benchmark-config.yaml`, read strictly: an unknown key or a bad value is refused before
//! anything runs, with the file, the line and the key.
//!
//! - [`run`]: what a run compares and how, and the profiles that override it;
//! - [`scenario`]: a scenario's load, faults and limits;
//! - [`mix`]: the requests a scenario sends, the catalog's or with bodies of one's own;
//! - [`flow`]: user journeys, requests in turn whose answers feed the next;
//! - [`outage`]: a scenario's components killed or stalled mid-run;
//! - [`stack`]: a stack's processes, transport and connection settings, `${NAME}` expansion;
//! - `short_form`: the first `test-config.yaml`'s shape (a `load_test` block and rates per
//!   scenario), read as the full form it stands for;
//! - [`run_secrets`]: what `${BENCH_*}` expands to: the secured stacks' private CA and password;
//! - `checks`: what the file must satisfy beyond its shape, each problem named by its key;
//! - `recorded`: the copies of these types that `results.json` keeps.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::BenchError;

mod checks;
pub mod flow;
pub mod mix;
pub mod outage;
mod recorded;
pub mod run;
pub mod run_secrets;
pub mod scenario;
mod short_form;
pub mod stack;

pub use bench_results::duration_text;
pub use checks::{Invalid, check_cpu_list};
pub use mix::{MixEntry, PayloadSize};
pub use recorded::faults as faults_recorded;
pub use run::{Profile, RunSettings};
pub use scenario::{
    Arrivals, Contention, Convergence, Expectations, Limits, Load, Phase, ScaleOut, Scenario, Sustained,
    scaled,
};
pub use stack::{ProcessSpec, StackSpec, Transport, expand};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkConfig {
    /// What a run compares, and how.
    #[serde(default)]
    pub run: RunSettings,
    /// Named sets of overrides of `run` (`quick` for CI).
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// Mixes shared by scenarios through YAML anchors (`&name`, `*name`), by name.
    #[serde(default, rename = "x-mixes")]
    pub mixes: BTreeMap<String, Vec<MixEntry>>,
    /// The scenarios, by name.
    #[serde(default)]
    pub scenarios: BTreeMap<String, Scenario>,
    /// The stacks, by name.
    pub stacks: BTreeMap<String, StackSpec>,
    /// How reports judge a run against a baseline.
    #[serde(default)]
    pub report: bench_report::ReportSettings,
}

/// A YAML error in `origin`, at the line and column it names.
fn yaml_error(origin: &str, error: &serde_yaml::Error) -> BenchError {
    let place = error.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
    BenchError::Config(format!("{origin}{place}: {error}"))
}

pub(crate) fn names<T>(map: &BTreeMap<String, T>) -> String {
    map.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
}

impl BenchmarkConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, BenchError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| BenchError::Config(format!("{}: {error}", path.display())))?;
        let dir = path.parent().map(|dir| std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
        Self::parse_in(&text, &path.display().to_string(), dir.as_deref())
    }

    /// Parses and checks `text`, naming `origin` in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, BenchError> {
        Self::parse_in(text, origin, None)
    }

    /// [`BenchmarkConfig::parse`] of a file in `dir`, which `${BENCH_CONFIG_DIR}` names (so that a
    /// process can be given a file beside the configuration, wherever the runner is started).
    fn parse_in(text: &str, origin: &str, dir: Option<&Path>) -> Result<Self, BenchError> {
        let mut config: Self = if short_form::is_short(text) {
            short_form::parse(text, origin, dir)?
        } else {
            serde_yaml::from_str(text).map_err(|error| yaml_error(origin, &error))?
        };
        // The run's own secrets first (their files written only when a stack naming them starts),
        // then the runner's environment.
        let environment = |name: &str| match name {
            "BENCH_CONFIG_DIR" => dir.map(|dir| dir.display().to_string()),
            _ => crate::config::run_secrets::lookup(name).or_else(|| std::env::var(name).ok()),
        };
        for (name, stack) in &mut config.stacks {
            let named = crate::config::run_secrets::named_in;
            stack.uses_run_secrets = stack.nats.values().any(|v| named(v))
                || stack.ca.as_deref().is_some_and(named)
                || stack
                    .processes
                    .iter()
                    .any(|p| p.command.iter().any(|a| named(a)) || p.env.values().any(|v| named(v)));
            let at = |place: String| {
                move |problem| BenchError::Config(format!("{origin}: stacks.{name}.{place}: {problem}"))
            };
            for (variable, value) in &mut stack.nats {
                *value = expand(value, &environment).map_err(at(format!("nats.{variable}")))?;
            }
            if let Some(ca) = &mut stack.ca {
                *ca = expand(ca, &environment).map_err(at("ca".to_string()))?;
            }
            for process in &mut stack.processes {
                for (i, argument) in process.command.iter_mut().enumerate() {
                    *argument = expand(argument, &environment)
                        .map_err(at(format!("{}.command[{i}]", process.name)))?;
                }
                for (variable, value) in &mut process.env {
                    *value = expand(value, &environment)
                        .map_err(at(format!("{}.env.{variable}", process.name)))?;
                }
            }
        }
        // Bodies of one's own are read beside the file, as `${BENCH_CONFIG_DIR}` is.
        for (name, scenario) in &mut config.scenarios {
            let at = |place: String| {
                move |problem: Invalid| {
                    BenchError::Config(format!(
                        "{origin}: {}",
                        problem.at(&format!("scenarios.{name}.{place}"))
                    ))
                }
            };
            for (i, entry) in scenario.mix.iter_mut().enumerate() {
                entry.resolve(dir, &[]).map_err(at(format!("mix[{i}].")))?;
            }
            for (f, flow) in scenario.flows.iter_mut().enumerate() {
                // A step names what the steps before it capture.
                let mut captures = Vec::new();
                for (i, step) in flow.steps.iter_mut().enumerate() {
                    step.resolve(dir, &captures).map_err(at(format!("flows[{f}].steps[{i}].")))?;
                    captures.extend(step.capture.keys().cloned());
                }
            }
        }
        config.check().map_err(|problem| BenchError::Config(format!("{origin}: {problem}")))?;
        Ok(config)
    }

    /// Whether `stack` is a validation-off control (which skips scenarios with invalid requests).
    pub fn is_unvalidated_control(&self, stack: &str) -> bool {
        self.stacks.get(stack).is_some_and(|spec| spec.unvalidated_control_of.is_some())
    }

    /// The run settings of `profile` (if any) with the environment's overrides on top:
    /// `STACKS` and `SCENARIOS` (comma-separated), `DURATION`, `WARMUP`, `REPETITIONS`, `SEED`.
    pub fn settings(
        &self,
        profile: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RunSettings, BenchError> {
        let mut run = self.run.clone();
        if let Some(name) = profile {
            let profile = self.profiles.get(name).ok_or_else(|| {
                BenchError::Config(format!("no profile {name:?} (there are {})", names(&self.profiles)))
            })?;
            run = run.with_profile(profile);
        }
        let bad =
            |name: &str, value: &str, why: String| BenchError::Config(format!("{name}={value:?}: {why}"));
        let list =
            |value: &str| value.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if let Some(value) = env("STACKS") {
            run.stacks = list(&value);
        }
        if let Some(value) = env("SCENARIOS") {
            run.scenarios = list(&value);
        }
        if let Some(value) = env("DURATION") {
            run.duration =
                Some(duration_text::parse(&value).map_err(|why| bad("DURATION", &value, why.to_string()))?);
            // Asked for by hand, it holds for every scenario.
            run.durations.clear();
        }
        if let Some(value) = env("WARMUP") {
            run.warmup =
                duration_text::parse(&value).map_err(|why| bad("WARMUP", &value, why.to_string()))?;
        }
        if let Some(value) = env("REPETITIONS") {
            run.repetitions =
                value.parse().map_err(|_| bad("REPETITIONS", &value, "not a whole number".into()))?;
        }
        if let Some(value) = env("SEED") {
            run.seed = value.parse().map_err(|_| bad("SEED", &value, "not a whole number".into()))?;
        }
        // A file of one's own may name nothing to run: then it runs all it has.
        if run.stacks.is_empty() {
            run.stacks = self.stacks.keys().cloned().collect();
        }
        if run.scenarios.is_empty() {
            run.scenarios = self.scenarios.keys().cloned().collect();
        }
        self.check_run(&run, "the run (after PROFILE and the environment)")
            .map_err(|problem| BenchError::Config(problem.to_string()))?;
        Ok(run)
    }

    /// The stack `name`, or for a scale-out's `{stack}@{count}` ([`scenario::scaled`]), a copy of
    /// that stack whose first service process runs `count` instances (behind the load balancer
    /// when it serves HTTP, whatever the count).
    pub fn stack_variant(&self, name: &str) -> Result<std::borrow::Cow<'_, StackSpec>, BenchError> {
        let Some((stack, count)) = scenario::scaled(name) else {
            return self.stack(name).map(std::borrow::Cow::Borrowed);
        };
        let mut spec = self.stack(stack)?.clone();
        let https = spec.url.starts_with("https://");
        let index = spec
            .first_service_index()
            .ok_or_else(|| BenchError::Config(format!("{stack} has no service process to scale out")))?;
        let process = &mut spec.processes[index];
        if https && process.serves {
            return Err(BenchError::Config(format!(
                "{stack}: an HTTPS API is not scaled out (the balancer speaks plain HTTP)"
            )));
        }
        process.instances = count;
        process.balanced = true;
        Ok(std::borrow::Cow::Owned(spec))
    }

    /// A stack by name, or an error listing the names there are.
    pub fn stack(&self, name: &str) -> Result<&StackSpec, BenchError> {
        self.stacks.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.stacks.keys().map(String::as_str).collect();
            BenchError::Config(format!("no stack {name:?}; the config has {}", known.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_checked_in_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/benchmark-config.yaml");
        let config = BenchmarkConfig::load(&path).unwrap();
        assert!(config.stacks.contains_key("http-rabbitmq"));
        for scenario in [
            "baseline",
            "high_throughput",
            "error_resilience",
            "large_payloads",
            "mixed_workload",
            "stress_test",
            "comparison_baseline",
        ] {
            assert!(!config.scenarios[scenario].description.is_empty(), "{scenario}");
        }
        let quick = config.settings(Some("quick"), &|_| None).unwrap();
        assert_eq!(quick.repetitions, 1);
        assert_eq!(config.stack("http-rabbitmq").unwrap().processes[0].instances, 2);
    }

    #[test]
    fn the_environment_overrides_the_common_knobs_and_is_checked_too() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/benchmark-config.yaml");
        let config = BenchmarkConfig::load(&path).unwrap();
        let env = |name: &str| match name {
            "DURATION" => Some("5s".to_string()),
            "SCENARIOS" => Some("baseline, stress_test".to_string()),
            "REPETITIONS" => Some("4".to_string()),
            _ => None,
        };
        let run = config.settings(None, &env).unwrap();
        assert_eq!(run.duration, Some(Duration::from_secs(5)));
        assert_eq!(run.scenarios, ["baseline", "stress_test"]);
        assert_eq!(run.repetitions, 4);
        let typo = |name: &str| (name == "SCENARIOS").then(|| "baseline,basline".to_string());
        let error = config.settings(None, &typo).unwrap_err().to_string();
        assert!(error.contains("no scenario \"basline\""), "{error}");
        let bad = |name: &str| (name == "DURATION").then(|| "5 parsecs".to_string());
        assert!(config.settings(None, &bad).unwrap_err().to_string().contains("DURATION"));
        assert!(config.settings(Some("slow"), &|_| None).unwrap_err().to_string().contains("no profile"));

        // The quick profile soaks for 30 s where its other scenarios last 3 s; a DURATION given by
        // hand holds for every scenario.
        let quick = config.settings(Some("quick"), &|_| None).unwrap();
        assert_eq!(quick.duration, Some(Duration::from_secs(3)));
        assert_eq!(quick.durations.get("sustained_load"), Some(&Duration::from_secs(30)));
        let by_hand = config.settings(Some("quick"), &env).unwrap();
        assert!(by_hand.durations.is_empty());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_line_and_the_key() {
        let text = "stacks:\n  nats:\n    description: d\n    transport: nats\n    url: nats://127.0.0.1:4222\n    procesess: []\n";
        let error = BenchmarkConfig::parse(text, "bench.yaml").unwrap_err().to_string();
        assert!(error.contains("bench.yaml:6:"), "{error}");
        assert!(error.contains("unknown field `procesess`"), "{error}");

        let text = "stacks:\n  web:\n    description: d\n    transport: http\n    url: nats://x:1\n    processes: [{name: a, command: [b]}]\n";
        let error = BenchmarkConfig::parse(text, "bench.yaml").unwrap_err().to_string();
        assert!(error.contains("stacks.web.url"), "{error}");

        let text = "stacks:\n  web:\n    description: d\n    transport: carrier-pigeon\n";
        let error = BenchmarkConfig::parse(text, "bench.yaml").unwrap_err().to_string();
        assert!(error.contains("bench.yaml:4:") && error.contains("carrier-pigeon"), "{error}");
    }

    #[test]
    fn an_archive_needs_the_orders_followed_and_its_database_an_archive() {
        let scenario = |extra: &str| {
            format!(
                "stacks: {{}}\nscenarios:\n  s:\n    description: d\n    load: {{ model: open, phases: [{{ arrival_rate: 10, duration: 10s }}] }}\n    mix: [{{ endpoint: ecommerce.create_order, weight: 1 }}]\n{extra}"
            )
        };
        let followed = "    convergence: { settle: 5s, poll: 10ms }\n";
        let database_down = "    outages: [{ at: 2s, kill: database, for: 2s }]\n";
        let ok = scenario(&format!("{followed}    archive: true\n{database_down}"));
        assert!(BenchmarkConfig::parse(&ok, "b.yaml").unwrap().scenarios["s"].archive);
        let unfollowed = BenchmarkConfig::parse(&scenario("    archive: true\n"), "b.yaml").unwrap_err();
        assert!(unfollowed.to_string().contains("archive: needs convergence"), "{unfollowed}");
        let no_database = BenchmarkConfig::parse(&scenario(&format!("{followed}{database_down}")), "b.yaml");
        let no_database = no_database.unwrap_err().to_string();
        assert!(no_database.contains("the database is there only with archive: true"), "{no_database}");
    }
}
