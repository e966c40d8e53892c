//! `config/benchmark-config.yaml`, read strictly: an unknown key or a bad value is refused before
//! anything runs, with the file, the line and the key.

use std::collections::BTreeMap;
use std::path::Path;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::workload::Endpoint;

mod recorded;

pub use recorded::faults as faults_recorded;

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
/// What a run compares, and how.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// The stacks compared, run in a shuffled order in every repetition.
    pub stacks: Vec<String>,
    /// The scenarios run, in this order.
    pub scenarios: Vec<String>,
    /// Load before measuring, discarded.
    #[serde(with = "duration_text")]
    pub warmup: Duration,
    /// Measurements of each scenario on each stack.
    pub repetitions: u32,
    /// Seed of payloads, mixes and arrival jitter.
    pub seed: u64,
    /// A request with no answer after this is counted as a timeout.
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
    /// Replaces every scenario's duration (a quick run).
    #[serde(with = "duration_text::option")]
    pub duration: Option<Duration>,
    /// Replaces the duration of the scenarios named (before `duration`): a quick run's soak lasts
    /// longer than its other scenarios.
    #[serde(default, with = "duration_text::map")]
    pub durations: BTreeMap<String, Duration>,
    /// Shuffles the order of stacks in each repetition, so that drift of the machine over the run
    /// does not favour whichever stack goes first.
    pub shuffle_stacks: bool,
    /// The CPUs the load generator runs on (`taskset` list: `0`, `0-1`, `0,2`); by default every
    /// core, shared with the stacks and brokers. On a larger machine, keep it off the stacks' cores
    /// (and give each stack process its own with `cpus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_cpus: Option<String>,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            stacks: Vec::new(),
            scenarios: Vec::new(),
            warmup: Duration::from_secs(2),
            repetitions: 3,
            seed: 2026,
            request_timeout: Duration::from_secs(5),
            duration: None,
            durations: BTreeMap::new(),
            shuffle_stacks: true,
            generator_cpus: None,
        }
    }
}

/// Overrides of [`RunSettings`]; what is absent stays.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// One line saying what it is for.
    #[serde(default)]
    pub description: String,
    /// See [`RunSettings::stacks`].
    pub stacks: Option<Vec<String>>,
    /// See [`RunSettings::scenarios`].
    pub scenarios: Option<Vec<String>>,
    /// See [`RunSettings::warmup`].
    #[serde(default, with = "duration_text::option")]
    pub warmup: Option<Duration>,
    /// See [`RunSettings::repetitions`].
    pub repetitions: Option<u32>,
    /// See [`RunSettings::duration`].
    #[serde(default, with = "duration_text::option")]
    pub duration: Option<Duration>,
    /// See [`RunSettings::durations`].
    #[serde(default, with = "duration_text::map")]
    pub durations: BTreeMap<String, Duration>,
}

/// One scenario: a load, a mix of requests, injected errors, and what the results must meet.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What it shows, for the report.
    pub description: String,
    /// How requests arrive.
    pub load: Load,
    /// Which requests, in what proportions.
    pub mix: Vec<MixEntry>,
    /// The share of requests sent invalid (each breaking one rule), from 0 to 1.
    #[serde(default)]
    pub invalid_share: f64,
    /// The services' injected faults, passed to every stack as `FAULT_*`.
    #[serde(default)]
    pub faults: Option<faults::FaultSettings>,
    /// Limits the results must meet; a breach makes the run fail.
    #[serde(default)]
    pub performance_expectations: Option<Expectations>,
    /// Only these of the run's stacks (default: all of them), for scenarios that mean nothing on
    /// some (faults on an echo responder).
    #[serde(default)]
    pub stacks: Option<Vec<String>>,
    /// Every reservation and restock of the mix goes to a few hot items; at the end, the stock
    /// left must account for every unit sold (zero oversell).
    #[serde(default)]
    pub contention: Option<Contention>,
    /// The shop's events are on, and every order placed is followed into analytics: how long it
    /// takes to show there, and whether it is counted exactly once.
    #[serde(default)]
    pub convergence: Option<Convergence>,
}

/// Many users reserving the same few items.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Contention {
    /// How many items every reservation and restock goes to (1 to 100).
    pub hot_skus: u32,
    /// Units of each put in stock before the warm-up.
    pub initial_stock: u32,
    /// Units per reservation line, spread over 1 to this alike on every item (default 3).
    #[serde(default = "three")]
    pub max_units: u32,
    /// Units per restock, spread over 1 to this alike on every item (default 20).
    #[serde(default = "twenty")]
    pub max_restock: u32,
}

fn three() -> u32 {
    3
}

fn twenty() -> u32 {
    20
}

/// Following each order placed into analytics.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Convergence {
    /// How long an order may take to show in analytics before it counts as lost.
    #[serde(default = "ten_seconds", with = "duration_text")]
    pub settle: Duration,
    /// How often a probe asks analytics whether the order shows yet (its lag's resolution).
    #[serde(default = "five_ms", with = "duration_text")]
    pub poll: Duration,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn five_ms() -> Duration {
    Duration::from_millis(5)
}

/// How requests arrive.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum Load {
    /// `users` each send a request, wait for its answer (and `think_time`), and send the next.
    /// Latency is service time; the arrival rate is whatever the stack sustains.
    Closed {
        /// Concurrent users.
        users: u32,
        /// Users started per second until all run (0: all at once).
        #[serde(default)]
        spawn_rate: f64,
        /// How long it measures.
        #[serde(with = "duration_text")]
        duration: Duration,
        /// A pause between a user's answer and its next request.
        #[serde(default, with = "duration_text")]
        think_time: Duration,
    },
    /// Requests planned at absolute times, whatever the answers do: latency counts from the
    /// planned time, so a stall shows in full (no coordinated omission).
    Open {
        /// Phases in order; each at `arrival_rate` requests per second, ramping linearly to
        /// `ramp_to` when given.
        phases: Vec<Phase>,
        /// Requests allowed in flight before new ones are dropped (and counted).
        #[serde(default = "default_max_in_flight")]
        max_in_flight: u32,
    },
    /// A soak: each stack's saturation rate is measured first (`probe_users` in a closed loop for
    /// `probe`), then requests are offered at `fraction` of it in an open loop for `duration`.
    /// Latency drift and memory growth over that time are what it shows.
    Soak {
        /// The share of the measured saturation rate offered, above 0 and at most 1.
        fraction: f64,
        /// Users of the saturation probe.
        #[serde(default = "thirty_two")]
        probe_users: u32,
        /// How long the saturation probe lasts.
        #[serde(default = "three_seconds", with = "duration_text")]
        probe: Duration,
        /// How long it measures.
        #[serde(with = "duration_text")]
        duration: Duration,
        /// As for open-loop load.
        #[serde(default = "default_max_in_flight")]
        max_in_flight: u32,
    },
    /// Open-loop load at each rate in turn, to find the saturation point.
    Stepped {
        /// Requests per second of each step.
        steps: Vec<f64>,
        /// How long each step lasts.
        #[serde(with = "duration_text")]
        step_duration: Duration,
        /// As for open-loop load.
        #[serde(default = "default_max_in_flight")]
        max_in_flight: u32,
        /// What a step must meet to count as sustained: the headline is the highest sustained
        /// step, and the knee is where a step is first not.
        #[serde(default)]
        sustained: Sustained,
    },
}

/// What a step of a stepped load must meet to count as sustained.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sustained {
    /// Answers per second, as a share of the offered rate (default 0.95).
    pub min_achieved: f64,
    /// Unexpected errors per answer (default 0.01).
    pub max_error_rate: f64,
    /// The step's p99 in milliseconds; by default four times the first step's p99 (the first
    /// step is the unloaded latency), which scales with what the stack does.
    pub max_p99_ms: Option<f64>,
}

impl Default for Sustained {
    fn default() -> Self {
        Self { min_achieved: 0.95, max_error_rate: 0.01, max_p99_ms: None }
    }
}

impl Sustained {
    /// Whether a step with these figures is sustained, `first_p99_us` being the first step's p99.
    pub fn holds(
        &self,
        target_rps: f64,
        achieved_rps: f64,
        error_rate: f64,
        p99_us: u64,
        first_p99_us: u64,
    ) -> bool {
        let max_p99_us = self.max_p99_ms.map_or(4.0 * first_p99_us.max(1) as f64, |ms| ms * 1000.0);
        achieved_rps >= self.min_achieved * target_rps
            && error_rate <= self.max_error_rate
            && p99_us as f64 <= max_p99_us
    }
}

fn default_max_in_flight() -> u32 {
    10_000
}

fn thirty_two() -> u32 {
    32
}

fn three_seconds() -> Duration {
    Duration::from_secs(3)
}

/// A phase of open-loop load.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Requests per second at the start.
    pub arrival_rate: f64,
    /// Requests per second at the end (default: `arrival_rate` all along).
    #[serde(default)]
    pub ramp_to: Option<f64>,
    /// How long it lasts.
    #[serde(with = "duration_text")]
    pub duration: Duration,
}

impl Load {
    /// How long it measures in all.
    pub fn duration(&self) -> Duration {
        match self {
            Load::Closed { duration, .. } | Load::Soak { duration, .. } => *duration,
            Load::Open { phases, .. } => phases.iter().map(|p| p.duration).sum(),
            Load::Stepped { steps, step_duration, .. } => *step_duration * steps.len() as u32,
        }
    }

    /// The same load lasting `total` instead (phases and steps scaled alike).
    pub fn scaled_to(&self, total: Duration) -> Self {
        let factor = total.as_secs_f64() / self.duration().as_secs_f64().max(1e-9);
        let mut load = self.clone();
        match &mut load {
            Load::Closed { duration, .. } | Load::Soak { duration, .. } => *duration = total,
            Load::Open { phases, .. } => {
                for phase in phases {
                    phase.duration = phase.duration.mul_f64(factor);
                }
            }
            Load::Stepped { step_duration, .. } => *step_duration = step_duration.mul_f64(factor),
        }
        load
    }

    /// Its label in reports.
    pub fn label(&self) -> &'static str {
        self.recorded().label()
    }
}

/// The CPUs this machine lets the run use.
fn machine_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Checks a CPU list (`0`, `0-3`, `0,2-3`) against the machine's `cores`; answers what is wrong.
pub fn check_cpu_list(list: &str, cores: usize) -> Result<(), String> {
    let cpu = |text: &str| -> Result<usize, String> {
        let cpu: usize =
            text.trim().parse().map_err(|_| format!("{list:?} is not a CPU list such as 0-1 or 0,2"))?;
        if cpu >= cores {
            return Err(format!(
                "{list:?} names CPU {cpu}, but this machine has CPUs 0 to {}",
                cores.saturating_sub(1)
            ));
        }
        Ok(cpu)
    };
    for part in list.split(',') {
        match part.split_once('-') {
            Some((first, last)) if cpu(first)? > cpu(last)? => {
                return Err(format!("{list:?}: the range {part} runs backwards"));
            }
            Some(_) => {}
            None => {
                cpu(part)?;
            }
        }
    }
    Ok(())
}

/// One kind of request in a mix.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// `service.endpoint`: one the load generator sends.
    pub endpoint: Endpoint,
    /// Payload size where the endpoint has sizes: `small`, `medium` or `large`.
    #[serde(default)]
    pub size: Option<PayloadSize>,
    /// For `ecommerce.get_order_overview`: items in each order overviewed (1 to 100, default 4);
    /// the overview fans out to one sub-request per item plus one to analytics (K = items + 1).
    #[serde(default)]
    pub items: Option<u32>,
    /// Relative weight.
    pub weight: f64,
}

/// Payload sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadSize {
    /// The smallest valid shape.
    Small,
    /// Typical.
    Medium,
    /// Many items or records.
    Large,
}

/// Limits a scenario's results must meet, for every stack unless `stacks` says otherwise.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Median latency, in milliseconds, at most.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, in milliseconds, at most.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// Answered requests per second, at least.
    #[serde(default)]
    pub min_rps: Option<f64>,
    /// Unexpected errors per request, at most.
    #[serde(default)]
    pub max_unexpected_error_rate: Option<f64>,
    /// Other limits for some stacks, by name (fields absent there are taken from here).
    #[serde(default)]
    pub stacks: BTreeMap<String, Expectations>,
}

impl Expectations {
    /// The limits that hold for `stack`.
    pub fn for_stack(&self, stack: &str) -> Expectations {
        let own = self.stacks.get(stack);
        let pick = |f: fn(&Expectations) -> Option<f64>| own.and_then(f).or(f(self));
        Expectations {
            p50_ms: pick(|e| e.p50_ms),
            p99_ms: pick(|e| e.p99_ms),
            min_rps: pick(|e| e.min_rps),
            max_unexpected_error_rate: pick(|e| e.max_unexpected_error_rate),
            stacks: BTreeMap::new(),
        }
    }
}

pub use bench_results::duration_text;

/// How a stack's clients reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// NATS request/reply on `{service}.{endpoint}`.
    Nats,
    /// HTTP `POST /{service}/{endpoint}`.
    Http,
}

/// One stack: what it is, where it listens, and its processes. Its `{:?}` leaves out every value
/// that `${NAME}` may have filled with a secret (see [`StackSpec::nats`]).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    /// One line for the report.
    pub description: String,
    /// How clients reach it.
    pub transport: Transport,
    /// `nats://host:port` or `http://host:port`.
    pub url: String,
    /// For an echo control: the subject (NATS) or path (HTTP, `/...`) it answers on, instead of the
    /// three services.
    #[serde(default)]
    pub echo_subject: Option<String>,
    /// For a validation-off control: the stack it copies, whose services it runs built without
    /// validation (natsrpc's `unvalidated-control` feature, `target/release/unvalidated/`). The
    /// report sets the two side by side: what validation costs end to end. The runner refuses a
    /// control whose services validate, and a stack whose services do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unvalidated_control_of: Option<String>,
    /// For a NATS stack on a server that wants credentials or TLS: natsrpc's variables
    /// (`NATS_USER`, `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_NKEY`, `NATS_CREDS`, `NATS_CA`, `NATS_CERT`,
    /// `NATS_KEY`, `NATS_TLS_FIRST`), given to the stack's processes and used by the runner's own
    /// connections. `${NAME}` in a value is replaced by the runner's environment variable `NAME` when
    /// the file is loaded, so that no secret has to sit in the file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nats: BTreeMap<String, String>,
    /// For an `https://` stack: a PEM file of the CA that signed its certificate (`${NAME}` expanded
    /// as in `nats`); the system's CAs when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Whether it names the run's own certificates or password (`${BENCH_TLS_CA}`...): they are
    /// written before it starts, and its processes get them. Found when the file is read.
    #[serde(skip)]
    pub uses_run_secrets: bool,
    /// For a secured variant (TLS and credentials, on brokers of its own that its processes
    /// start): the plain stack it copies. The report sets the two side by side: what security
    /// costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secured_variant_of: Option<String>,
    /// The brokers it uses (`nats`, `redis`, `rabbitmq`), whose CPU and memory count as its own.
    #[serde(default)]
    pub brokers: Vec<String>,
    /// Started in this order, stopped in the reverse order.
    pub processes: Vec<ProcessSpec>,
}

/// One kind of process of a stack.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Its role (`api`, `worker`...), for logs and the report.
    pub name: String,
    /// A binary of this workspace (or, failing that, a program on the `PATH`, such as a broker
    /// the stack starts itself) and its arguments; `${NAME}` is expanded as in `nats`.
    pub command: Vec<String>,
    /// `host:port` it listens on, for a broker the stack starts itself: the port must be free
    /// before the stack starts, and the next process starts once it accepts connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listens: Option<String>,
    /// How many to run.
    #[serde(default = "one")]
    pub instances: u32,
    /// The CPUs it runs on (`taskset` list: `2`, `2-3`, `2,4`); by default every core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// Its environment, on top of the stack's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

/// Names the settings and leaves their values out: a password from `${NAME}` may be any of them.
impl std::fmt::Debug for StackSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackSpec")
            .field("transport", &self.transport)
            .field("url", &natsrpc::redact_url(&self.url))
            .field("nats", &self.nats.keys().collect::<Vec<_>>())
            .field("processes", &self.processes)
            .finish_non_exhaustive()
    }
}

/// The program and the names of its settings, not its arguments or their values.
impl std::fmt::Debug for ProcessSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSpec")
            .field("name", &self.name)
            .field("program", &self.command.first())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl StackSpec {
    /// How the runner and the stack's processes connect to its NATS server: `url` and the `nats`
    /// settings.
    pub fn nats_config(&self) -> Result<natsrpc::NatsConfig, BenchError> {
        natsrpc::NatsConfig::from_lookup(|name| match name {
            "NATS_URL" => Some(self.url.clone()),
            other => self.nats.get(other).cloned(),
        })
        .map_err(|e| BenchError::Config(e.to_string()))
    }

    /// For an `https://` stack, how the runner's clients trust its certificate (`ca`, else the
    /// system's CAs); `None` for plain HTTP.
    pub fn http_tls(&self) -> Result<Option<rustls::ClientConfig>, BenchError> {
        if !self.url.starts_with("https://") {
            return Ok(None);
        }
        let ca = self.ca.as_deref().map(std::path::Path::new);
        http_api::tls::client_config(ca, "ca").map(Some).map_err(|e| BenchError::Config(e.to_string()))
    }

    /// A connection to its NATS server as the runner's own (no request timeout of its own).
    pub async fn connect_nats(&self) -> Result<async_nats::Client, BenchError> {
        self.connect_nats_with(None).await
    }

    /// A connection to its NATS server whose requests give up after `request_timeout`.
    pub async fn connect_nats_with(
        &self,
        request_timeout: Option<std::time::Duration>,
    ) -> Result<async_nats::Client, BenchError> {
        let config = self.nats_config()?;
        let options = config.options().await.map_err(|e| BenchError::Config(e.to_string()))?;
        let options = options.request_timeout(request_timeout);
        natsrpc::connect_with(&self.url, options).await.map_err(|e| BenchError::Nats(e.to_string()))
    }
}

/// Replaces each `${NAME}` in `value` by the environment variable `NAME` (`lookup`); an unset one
/// is an error naming it, never the value around it.
pub fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| "an unclosed ${".to_string())?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("${{{name}}} is not a variable name"));
        }
        out.push_str(&lookup(name).ok_or_else(|| format!("${{{name}}} is not set in the environment"))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn names<T>(map: &BTreeMap<String, T>) -> String {
    map.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
}

impl RunSettings {
    /// These settings with `profile`'s overrides.
    pub fn with_profile(&self, profile: &Profile) -> Self {
        let mut run = self.clone();
        if let Some(stacks) = &profile.stacks {
            run.stacks = stacks.clone();
        }
        if let Some(scenarios) = &profile.scenarios {
            run.scenarios = scenarios.clone();
        }
        run.warmup = profile.warmup.unwrap_or(run.warmup);
        run.repetitions = profile.repetitions.unwrap_or(run.repetitions);
        run.duration = profile.duration.or(run.duration);
        run.durations.extend(profile.durations.clone());
        run
    }
}

fn check_scenario(scenario: &Scenario) -> Result<(), String> {
    if scenario.mix.is_empty() {
        return Err("mix: at least one entry".into());
    }
    for (i, entry) in scenario.mix.iter().enumerate() {
        if !(entry.weight.is_finite() && entry.weight > 0.0) {
            return Err(format!("mix[{i}].weight: must be above 0"));
        }
    }
    if !(0.0..=1.0).contains(&scenario.invalid_share) {
        return Err("invalid_share: must be between 0 and 1".into());
    }
    let positive = |value: f64| value.is_finite() && value > 0.0;
    match &scenario.load {
        Load::Closed { users, duration, .. } => {
            if *users == 0 {
                return Err("load.users: must be at least 1".into());
            }
            if duration.is_zero() {
                return Err("load.duration: must be above 0".into());
            }
        }
        Load::Open { phases, .. } => {
            if phases.is_empty() {
                return Err("load.phases: at least one phase".into());
            }
            for (i, phase) in phases.iter().enumerate() {
                if !positive(phase.arrival_rate) || phase.ramp_to.is_some_and(|r| !positive(r)) {
                    return Err(format!("load.phases[{i}]: rates must be above 0"));
                }
                if phase.duration.is_zero() {
                    return Err(format!("load.phases[{i}].duration: must be above 0"));
                }
            }
        }
        Load::Soak { fraction, probe_users, probe, duration, .. } => {
            if !(positive(*fraction) && *fraction <= 1.0) {
                return Err("load.fraction: must be above 0 and at most 1".into());
            }
            if *probe_users == 0 || probe.is_zero() {
                return Err("load.probe_users, load.probe: the saturation probe needs users and time".into());
            }
            if duration.is_zero() {
                return Err("load.duration: must be above 0".into());
            }
        }
        Load::Stepped { steps, step_duration, sustained, .. } => {
            if steps.is_empty() || steps.iter().any(|r| !positive(*r)) {
                return Err("load.steps: at least one rate, each above 0".into());
            }
            if step_duration.is_zero() {
                return Err("load.step_duration: must be above 0".into());
            }
            if !(0.0..=1.0).contains(&sustained.min_achieved)
                || !(0.0..=1.0).contains(&sustained.max_error_rate)
                || sustained.max_p99_ms.is_some_and(|ms| !positive(ms))
            {
                return Err(
                    "load.sustained: min_achieved and max_error_rate from 0 to 1, max_p99_ms above 0".into(),
                );
            }
        }
    }
    let sends = |endpoint: Endpoint| scenario.mix.iter().any(|e| e.endpoint == endpoint);
    if let Some(contention) = &scenario.contention {
        if !(1..=100).contains(&contention.hot_skus) {
            return Err("contention.hot_skus: 1 to 100".into());
        }
        if contention.initial_stock == 0 || contention.max_units == 0 || contention.max_restock == 0 {
            return Err("contention: initial_stock, max_units and max_restock must be at least 1".into());
        }
        if contention.max_units > 1000 || contention.max_restock.max(contention.initial_stock) > 1_000_000 {
            return Err(
                "contention: max_units at most 1000, initial_stock and max_restock at most 1,000,000".into(),
            );
        }
        if !sends(Endpoint::ReserveInventory) {
            return Err("contention: the mix needs ecommerce.reserve_inventory".into());
        }
    }
    if let Some(convergence) = &scenario.convergence {
        if !sends(Endpoint::CreateOrder) {
            return Err("convergence: the mix needs ecommerce.create_order".into());
        }
        if convergence.poll.is_zero() || convergence.settle < convergence.poll {
            return Err("convergence: poll must be above 0 and settle at least poll".into());
        }
    }
    Ok(())
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
        let mut config: Self = serde_yaml::from_str(text).map_err(|error| {
            let place = error.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            BenchError::Config(format!("{origin}{place}: {error}"))
        })?;
        // The run's own secrets first (their files written only when a stack naming them starts),
        // then the runner's environment.
        let environment = |name: &str| match name {
            "BENCH_CONFIG_DIR" => dir.map(|dir| dir.display().to_string()),
            _ => crate::system::run_secrets::lookup(name).or_else(|| std::env::var(name).ok()),
        };
        for (name, stack) in &mut config.stacks {
            let named = crate::system::run_secrets::named_in;
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
        config.check().map_err(|problem| BenchError::Config(format!("{origin}: {problem}")))?;
        Ok(config)
    }

    /// Whether `stack` is a validation-off control (which skips scenarios with invalid requests).
    pub fn is_unvalidated_control(&self, stack: &str) -> bool {
        self.stacks.get(stack).is_some_and(|spec| spec.unvalidated_control_of.is_some())
    }

    fn check(&self) -> Result<(), String> {
        for (name, stack) in &self.stacks {
            let schemes: &[&str] = match stack.transport {
                Transport::Nats => &["nats://", "tls://"],
                Transport::Http => &["http://", "https://"],
            };
            if !schemes.iter().any(|scheme| stack.url.starts_with(scheme))
                || crate::system::stacks::host_port(&stack.url).is_none()
            {
                return Err(format!(
                    "stacks.{name}.url: {:?} is not {}host:port",
                    natsrpc::redact_url(&stack.url),
                    schemes.join(" or ")
                ));
            }
            for broker in &stack.brokers {
                if !crate::system::resources::BROKERS.iter().any(|(name, _)| name == broker) {
                    return Err(format!("stacks.{name}.brokers: {broker:?} is not nats, redis or rabbitmq"));
                }
            }
            if stack.transport == Transport::Http
                && let Some(path) = stack.echo_subject.as_ref().filter(|path| !path.starts_with('/'))
            {
                return Err(format!(
                    "stacks.{name}.echo_subject: an HTTP echo's path starts with /, not {path:?}"
                ));
            }
            for variable in stack.nats.keys() {
                if stack.transport != Transport::Nats {
                    return Err(format!("stacks.{name}.nats: only for a NATS stack"));
                }
                if variable == "NATS_URL" || !natsrpc::NATS_VARIABLES.contains(&variable.as_str()) {
                    return Err(format!(
                        "stacks.{name}.nats.{variable}: not one of natsrpc's variables ({}; the server is `url`)",
                        natsrpc::NATS_VARIABLES[1..].join(", ")
                    ));
                }
            }
            if !stack.nats.is_empty() {
                stack.nats_config().map_err(|e| format!("stacks.{name}.nats: {e}"))?;
            }
            if let Some(of) = &stack.unvalidated_control_of {
                let copied = self.stacks.get(of).filter(|copied| {
                    of != name
                        && copied.transport == stack.transport
                        && copied.unvalidated_control_of.is_none()
                });
                if copied.is_none() {
                    return Err(format!(
                        "stacks.{name}.unvalidated_control_of: {of:?} is not another stack of the same transport \
                         (there are {})",
                        names(&self.stacks)
                    ));
                }
            }
            if let Some(of) = &stack.secured_variant_of {
                let copied = self.stacks.get(of).filter(|copied| {
                    of != name
                        && copied.transport == stack.transport
                        && copied.secured_variant_of.is_none()
                        && copied.unvalidated_control_of.is_none()
                });
                if copied.is_none() || stack.unvalidated_control_of.is_some() {
                    return Err(format!(
                        "stacks.{name}.secured_variant_of: {of:?} is not another plain stack of the same transport \
                         (there are {})",
                        names(&self.stacks)
                    ));
                }
            }
            if stack.processes.is_empty() {
                return Err(format!("stacks.{name}.processes: a stack needs at least one process"));
            }
            for (i, process) in stack.processes.iter().enumerate() {
                if process.command.is_empty() {
                    return Err(format!("stacks.{name}.processes[{i}].command: empty"));
                }
                if process.instances == 0 {
                    return Err(format!("stacks.{name}.processes[{i}].instances: must be at least 1"));
                }
                if let Some(address) = &process.listens
                    && (process.instances != 1 || address.parse::<std::net::SocketAddr>().is_err())
                {
                    return Err(format!(
                        "stacks.{name}.processes[{i}].listens: {address:?} is not one process's ip:port"
                    ));
                }
                if let Some(cpus) = &process.cpus {
                    check_cpu_list(cpus, machine_cores())
                        .map_err(|problem| format!("stacks.{name}.processes[{i}].cpus: {problem}"))?;
                }
            }
        }
        for (name, scenario) in &self.scenarios {
            check_scenario(scenario).map_err(|problem| format!("scenarios.{name}.{problem}"))?;
            for stack in scenario.stacks.iter().flatten() {
                if !self.stacks.contains_key(stack) {
                    return Err(format!(
                        "scenarios.{name}.stacks: no stack {stack:?} (there are {})",
                        names(&self.stacks)
                    ));
                }
            }
        }
        self.check_run(&self.run, "run")?;
        for (name, profile) in &self.profiles {
            let run = self.run.with_profile(profile);
            self.check_run(&run, &format!("profiles.{name}"))?;
        }
        Ok(())
    }

    fn check_run(&self, run: &RunSettings, at: &str) -> Result<(), String> {
        if let Some(cpus) = &run.generator_cpus {
            check_cpu_list(cpus, machine_cores())
                .map_err(|problem| format!("{at}.generator_cpus: {problem}"))?;
        }
        for stack in &run.stacks {
            if !self.stacks.contains_key(stack) {
                return Err(format!("{at}.stacks: no stack {stack:?} (there are {})", names(&self.stacks)));
            }
        }
        for scenario in &run.scenarios {
            if !self.scenarios.contains_key(scenario) {
                return Err(format!(
                    "{at}.scenarios: no scenario {scenario:?} (there are {})",
                    names(&self.scenarios)
                ));
            }
        }
        for scenario in run.durations.keys() {
            if !self.scenarios.contains_key(scenario) {
                return Err(format!(
                    "{at}.durations: no scenario {scenario:?} (there are {})",
                    names(&self.scenarios)
                ));
            }
        }
        if run.repetitions == 0 {
            return Err(format!("{at}.repetitions: must be at least 1"));
        }
        Ok(())
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
        self.check_run(&run, "the run (after PROFILE and the environment)").map_err(BenchError::Config)?;
        Ok(run)
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

    #[test]
    fn cpu_lists_are_checked_against_the_machine() {
        assert!(
            check_cpu_list("0", 2).is_ok()
                && check_cpu_list("0-1", 2).is_ok()
                && check_cpu_list("0,1", 2).is_ok()
        );
        assert!(check_cpu_list("2", 2).unwrap_err().contains("CPUs 0 to 1"));
        assert!(check_cpu_list("1-0", 2).unwrap_err().contains("backwards"));
        assert!(check_cpu_list("one", 2).unwrap_err().contains("not a CPU list"));
        assert!(check_cpu_list("", 2).is_err());
    }

    #[test]
    fn a_step_is_sustained_at_its_rate_with_few_errors_and_its_latency_near_the_unloaded_one() {
        let by_default = Sustained::default();
        // The first step's p99 is 2 ms: up to 8 ms is near it.
        assert!(by_default.holds(8000.0, 7900.0, 0.001, 8_000, 2_000));
        assert!(
            !by_default.holds(12000.0, 11000.0, 0.0, 3_000, 2_000),
            "answered under 95% of the offered rate"
        );
        assert!(!by_default.holds(12000.0, 12000.0, 0.187, 3_000, 2_000), "18.7% errors");
        assert!(!by_default.holds(12000.0, 12000.0, 0.0, 125_000, 2_000), "p99 far above the unloaded one");
        let absolute = Sustained { max_p99_ms: Some(50.0), ..Sustained::default() };
        assert!(absolute.holds(12000.0, 12000.0, 0.0, 49_000, 2_000));
    }

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
    fn scenarios_are_checked_before_anything_runs() {
        let stacks = "stacks:\n  s:\n    description: d\n    transport: nats\n    url: nats://127.0.0.1:4222\n    processes: [{name: a, command: [b]}]\n";
        let bad_endpoint = format!(
            "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: closed, users: 1, duration: 1s}}\n    mix: [{{endpoint: shop.buy, weight: 1}}]\n"
        );
        let error = BenchmarkConfig::parse(&bad_endpoint, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("b.yaml:11:") && error.contains("scenarios.x.mix[0]"), "{error}");
        assert!(error.contains("endpoint \"shop.buy\" is not one the load generator sends"), "{error}");
        assert!(error.contains("ecommerce.create_order, "), "the endpoints there are: {error}");
        let bad_duration = format!(
            "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: closed, users: 1, duration: soon}}\n    mix: []\n"
        );
        let error = BenchmarkConfig::parse(&bad_duration, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("b.yaml:") && error.contains("soon"), "{error}");
        let unknown_model = format!(
            "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: poisson, rate: 1}}\n    mix: []\n"
        );
        let error = BenchmarkConfig::parse(&unknown_model, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("poisson"), "{error}");
        let bad_share = format!(
            "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: open, phases: [{{arrival_rate: 10, duration: 1s}}]}}\n    mix: [{{endpoint: ecommerce.restock, weight: 1}}]\n    invalid_share: 1.5\n"
        );
        let error = BenchmarkConfig::parse(&bad_share, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("scenarios.x.invalid_share"), "{error}");
        let scenario = |rest: &str| {
            format!(
                "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: closed, users: 1, duration: 1s}}\n{rest}"
            )
        };
        let no_reservations = scenario(
            "    mix: [{endpoint: ecommerce.restock, weight: 1}]\n    contention: {hot_skus: 2, initial_stock: 10}\n",
        );
        let error = BenchmarkConfig::parse(&no_reservations, "b.yaml").unwrap_err().to_string();
        assert!(
            error.contains("scenarios.x.contention: the mix needs ecommerce.reserve_inventory"),
            "{error}"
        );
        let no_orders =
            scenario("    mix: [{endpoint: ecommerce.restock, weight: 1}]\n    convergence: {settle: 1s}\n");
        let error = BenchmarkConfig::parse(&no_orders, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("scenarios.x.convergence: the mix needs ecommerce.create_order"), "{error}");
        let greedy_soak = format!(
            "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: soak, fraction: 1.5, duration: 1m}}\n    mix: [{{endpoint: ecommerce.restock, weight: 1}}]\n"
        );
        let error = BenchmarkConfig::parse(&greedy_soak, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("scenarios.x.load.fraction"), "{error}");
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
    fn secrets_come_from_the_environment_and_only_known_nats_variables_are_taken() {
        let env = |name: &str| (name == "PASS").then(|| "hunter2".to_string());
        assert_eq!(expand("${PASS}", &env).unwrap(), "hunter2");
        assert_eq!(expand("a-${PASS}-b", &env).unwrap(), "a-hunter2-b");
        assert_eq!(expand("plain", &env).unwrap(), "plain");
        assert!(expand("${NOPE}", &env).unwrap_err().contains("${NOPE} is not set"));
        assert!(expand("${PASS", &env).unwrap_err().contains("unclosed"));
        assert!(expand("${a b}", &env).unwrap_err().contains("not a variable name"));

        let stack = |nats: &str, transport: &str, url: &str| {
            format!(
                "stacks:\n  s:\n    description: d\n    transport: {transport}\n    url: {url}\n    nats: {nats}\n    processes: [{{name: a, command: [b]}}]\n"
            )
        };
        let good =
            stack("{NATS_USER: u, NATS_PASSWORD: p, NATS_CA: /ca.pem}", "nats", "tls://127.0.0.1:4222");
        let config = BenchmarkConfig::parse(&good, "b.yaml").unwrap();
        let nats = config.stacks["s"].nats_config().unwrap();
        assert!(matches!(nats.auth, natsrpc::NatsAuth::UserPassword { .. }) && nats.tls.ca.is_some());
        for (nats, transport, url, says) in [
            ("{NATS_URL: x}", "nats", "nats://127.0.0.1:4222", "stacks.s.nats.NATS_URL"),
            ("{NATS_PASWORD: x}", "nats", "nats://127.0.0.1:4222", "stacks.s.nats.NATS_PASWORD"),
            ("{NATS_USER: u}", "nats", "nats://127.0.0.1:4222", "NATS_USER is set without NATS_PASSWORD"),
            ("{NATS_TOKEN: t}", "http", "http://127.0.0.1:8080", "only for a NATS stack"),
        ] {
            let error =
                BenchmarkConfig::parse(&stack(nats, transport, url), "b.yaml").unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn the_runs_own_secrets_fill_commands_and_settings_and_stay_out_of_debug() {
        let text = r#"stacks:
  plain: {description: d, transport: http, url: "http://127.0.0.1:8080", processes: [{name: api, command: [http-redis]}]}
  s:
    description: d
    transport: http
    url: https://127.0.0.1:8443
    ca: "${BENCH_TLS_CA}"
    secured_variant_of: plain
    processes:
      - {name: broker, command: [redis-server, --requirepass, "${BENCH_SECRET}"], listens: "127.0.0.1:6435"}
      - {name: api, command: [http-redis], env: {REDIS_URL: "rediss://:${BENCH_SECRET}@127.0.0.1:6435"}}
"#;
        let config = BenchmarkConfig::parse(text, "b.yaml").unwrap();
        let secret = crate::system::run_secrets::lookup("BENCH_SECRET").unwrap();
        let spec = &config.stacks["s"];
        assert!(spec.uses_run_secrets && !config.stacks["plain"].uses_run_secrets);
        let ca = std::path::Path::new(spec.ca.as_deref().unwrap());
        assert!(!ca.exists(), "nothing is written until a stack that names them starts");
        crate::system::run_secrets::RunSecrets::get().write_files().unwrap();
        assert_eq!(spec.processes[0].command[2], secret);
        assert!(spec.processes[1].env["REDIS_URL"].contains(&secret));
        assert!(spec.ca.as_deref().is_some_and(|ca| std::path::Path::new(ca).is_file()));
        assert!(spec.http_tls().unwrap().is_some(), "an https:// stack gets a TLS client trusting its ca");
        let shown = format!("{spec:?}");
        assert!(!shown.contains(&secret) && shown.contains("REDIS_URL"), "{shown}");

        for (from, to, says) in [
            ("secured_variant_of: plain", "secured_variant_of: s", "secured_variant_of"),
            ("listens: \"127.0.0.1:6435\"", "listens: localhost", "listens"),
        ] {
            let error = BenchmarkConfig::parse(&text.replace(from, to), "b.yaml").unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
        crate::system::run_secrets::RunSecrets::remove();
    }

    #[test]
    fn a_validation_control_copies_another_stack_of_its_transport() {
        let stack = |name: &str, transport: &str, url: &str, of: Option<&str>| {
            let of = of.map(|of| format!("    unvalidated_control_of: {of}\n")).unwrap_or_default();
            format!(
                "  {name}:\n    description: d\n    transport: {transport}\n    url: {url}\n{of}    processes: [{{name: a, command: [b]}}]\n"
            )
        };
        let nats = stack("nats", "nats", "nats://127.0.0.1:4222", None);
        let web = stack("web", "http", "http://127.0.0.1:8080", None);
        let good = format!("stacks:\n{nats}{}", stack("bare", "nats", "nats://127.0.0.1:4222", Some("nats")));
        let config = BenchmarkConfig::parse(&good, "b.yaml").unwrap();
        assert_eq!(config.stacks["bare"].unvalidated_control_of.as_deref(), Some("nats"));
        let other_control = stack("other", "nats", "nats://127.0.0.1:4222", Some("nats"));
        for (control, why) in [
            (stack("bare", "nats", "nats://127.0.0.1:4222", Some("nowhere")), "an unknown stack"),
            (stack("bare", "nats", "nats://127.0.0.1:4222", Some("bare")), "itself"),
            (stack("bare", "http", "http://127.0.0.1:8081", Some("nats")), "another transport"),
            (stack("bare", "nats", "nats://127.0.0.1:4222", Some("other")), "another control"),
        ] {
            let text = format!("stacks:\n{nats}{web}{other_control}{control}");
            let error =
                BenchmarkConfig::parse(&text, "b.yaml").err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                error.contains("stacks.bare.unvalidated_control_of"),
                "a control of {why} was taken: {error:?}"
            );
        }
    }
}
