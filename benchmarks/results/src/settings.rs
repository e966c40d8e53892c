//! What a run was asked to do, as recorded: the settings, each scenario's load, mix, faults and
//! limits. These are copies of the configuration's types, not the types themselves, so that the
//! YAML can change without changing what old runs' files say; the runner converts when it writes.
//! Reading is lenient (an unknown key is ignored, a missing one takes its default): a file written
//! by an older runner still reads.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration_text;

/// What the run compared, and how.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RunSettings {
    /// The stacks compared.
    pub stacks: Vec<String>,
    /// The scenarios run, in order.
    pub scenarios: Vec<String>,
    /// Load before measuring, discarded.
    #[serde(with = "duration_text")]
    pub warmup: Duration,
    /// Measurements of each scenario on each stack.
    pub repetitions: u32,
    /// Seed of payloads, mixes and arrival jitter.
    pub seed: u64,
    /// A request with no answer after this counted as a timeout.
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
    /// Every scenario's duration, when one was imposed.
    #[serde(with = "duration_text::option")]
    pub duration: Option<Duration>,
    /// Durations imposed on some scenarios, by name.
    #[serde(with = "duration_text::map")]
    pub durations: BTreeMap<String, Duration>,
    /// Whether the order of stacks was shuffled in each repetition.
    pub shuffle_stacks: bool,
    /// The CPUs the load generator ran on, when it was kept to some.
    #[serde(skip_serializing_if = "Option::is_none")]
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

/// How requests arrived.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Load {
    /// `users` each sent a request, waited for its answer (and `think_time`), and sent the next.
    Closed {
        /// Concurrent users.
        users: u32,
        /// Users started per second until all ran (0: all at once).
        #[serde(default)]
        spawn_rate: f64,
        /// How long it measured.
        #[serde(with = "duration_text")]
        duration: Duration,
        /// The pause between a user's answer and its next request.
        #[serde(default, with = "duration_text")]
        think_time: Duration,
    },
    /// Requests planned at absolute times, whatever the answers did.
    Open {
        /// Phases in order.
        phases: Vec<Phase>,
        /// Requests allowed in flight before new ones were dropped.
        #[serde(default = "default_max_in_flight")]
        max_in_flight: u32,
        /// `poisson` when arrivals were a Poisson process; unset when evenly spread.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arrivals: Option<String>,
    },
    /// A saturation probe, then an open loop at `fraction` of what it reached.
    Soak {
        /// The share of the saturation rate offered.
        fraction: f64,
        /// Users of the saturation probe.
        #[serde(default = "thirty_two")]
        probe_users: u32,
        /// How long the probe lasted.
        #[serde(default = "three_seconds", with = "duration_text")]
        probe: Duration,
        /// How long it measured.
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
        /// How long each step lasted.
        #[serde(with = "duration_text")]
        step_duration: Duration,
        /// As for open-loop load.
        #[serde(default = "default_max_in_flight")]
        max_in_flight: u32,
        /// What a step had to meet to count as sustained.
        #[serde(default)]
        sustained: Sustained,
    },
}

impl Load {
    /// Its label in reports.
    pub fn label(&self) -> &'static str {
        match self {
            Load::Closed { .. } => "closed loop",
            Load::Open { arrivals: Some(_), .. } => "open loop, Poisson arrivals",
            Load::Open { .. } => "open loop",
            Load::Soak { .. } => "soak (open loop at a share of saturation)",
            Load::Stepped { .. } => "stepped open loop",
        }
    }
}

/// A phase of open-loop load.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Phase {
    /// Requests per second at the start.
    pub arrival_rate: f64,
    /// Requests per second at the end, when it ramped.
    #[serde(default)]
    pub ramp_to: Option<f64>,
    /// How long it lasted.
    #[serde(with = "duration_text")]
    pub duration: Duration,
}

/// What a step of a stepped load had to meet to count as sustained.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Sustained {
    /// Answers per second, as a share of the offered rate.
    pub min_achieved: f64,
    /// Unexpected errors per answer.
    pub max_error_rate: f64,
    /// The step's p99 in milliseconds; by default four times the first step's.
    pub max_p99_ms: Option<f64>,
}

impl Default for Sustained {
    fn default() -> Self {
        Self { min_achieved: 0.95, max_error_rate: 0.01, max_p99_ms: None }
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

/// One kind of request in a mix.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct MixEntry {
    /// `service.endpoint`.
    pub endpoint: String,
    /// Payload size, where the endpoint has sizes.
    #[serde(default)]
    pub size: Option<PayloadSize>,
    /// Items in each order overviewed (`ecommerce.get_order_overview`), or events in each batch
    /// (`analytics.ingest_batch`).
    #[serde(default)]
    pub items: Option<u32>,
    /// Relative weight.
    pub weight: f64,
    /// Its own label, when the configuration gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// For a body of one's own: how it was encoded (`json`, `msgpack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_body: Option<String>,
    /// A flow's step: the values it captures from its answer, by name, with their paths.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, String>,
    /// A flow's step: the pause before it.
    #[serde(default, with = "duration_text::option", skip_serializing_if = "Option::is_none")]
    pub think_time: Option<Duration>,
}

/// A user journey: requests in turn, whose answers may feed the next.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Flow {
    /// Its label.
    pub name: String,
    /// Relative weight among the mix's entries.
    pub weight: f64,
    /// Its steps, in turn.
    pub steps: Vec<MixEntry>,
}

impl MixEntry {
    /// Its own name when it has one; else `service.endpoint`, with `/size` when the entry has
    /// one, `/kN` for a fan-out of N, or `/xN` for a batch of N events.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match (self.size, self.items) {
            (_, Some(items)) if self.endpoint == "analytics.ingest_batch" => {
                format!("{}/x{items}", self.endpoint)
            }
            (_, Some(items)) => format!("{}/k{}", self.endpoint, items + 1),
            (Some(size), None) => format!("{}/{}", self.endpoint, size.name()),
            (None, None) => self.endpoint.clone(),
        }
    }
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

impl PayloadSize {
    /// As the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            PayloadSize::Small => "small",
            PayloadSize::Medium => "medium",
            PayloadSize::Large => "large",
        }
    }
}

/// Limits a scenario's results had to meet: on all its requests, and on some of them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Expectations {
    /// On all its requests together.
    #[serde(flatten)]
    pub limits: Limits,
    /// On one kind of request, by its label (a mix entry's, a flow step's such as
    /// `upload/2 fileproc.upload_chunk`), or on a flow's journeys, by the flow's name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, Limits>,
    /// A measurement that misses a limit ends the run there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
    /// Other limits for some stacks, by name.
    #[serde(default)]
    pub stacks: BTreeMap<String, Expectations>,
}

/// Limits on a set of answers. Latencies are response times, in milliseconds, at most.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Limits {
    /// Median latency.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_ms: Option<f64>,
    /// 95th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// The slowest answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
    /// Answers per second, at least.
    #[serde(default)]
    pub min_rps: Option<f64>,
    /// Unexpected errors per answer, at most.
    #[serde(default)]
    pub max_unexpected_error_rate: Option<f64>,
    /// Unexpected errors of a kind (`transport:timeout`) or of a class (`transport`) per answer,
    /// at most.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_error_rates: BTreeMap<String, f64>,
}

/// The faults injected into the services. Rates are probabilities per operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Faults {
    /// Seed of the services' random source.
    pub seed: u64,
    /// A payment the gateway declines.
    pub payment_decline_rate: f64,
    /// A payment attempt that fails transiently (the service retries it).
    pub payment_transient_rate: f64,
    /// Time one payment attempt takes at the simulated gateway, milliseconds.
    pub payment_latency_ms: u64,
    /// A reservation refused as out of stock whatever the stock level.
    pub out_of_stock_rate: f64,
    /// A request that fails inside the service.
    pub internal_error_rate: f64,
    /// Latency added to every request, milliseconds...
    pub extra_latency_ms: u64,
    /// ...plus a uniformly drawn part of up to this many.
    pub extra_latency_jitter_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_labels_say_size_and_fan_out() {
        let entry = |size, items| MixEntry {
            endpoint: "shop.x".into(),
            size,
            items,
            weight: 1.0,
            name: None,
            own_body: None,
            capture: BTreeMap::new(),
            think_time: None,
        };
        assert_eq!(entry(None, None).label(), "shop.x");
        assert_eq!(entry(Some(PayloadSize::Large), None).label(), "shop.x/large");
        assert_eq!(entry(Some(PayloadSize::Small), Some(4)).label(), "shop.x/k5");
        let batch = MixEntry { endpoint: "analytics.ingest_batch".into(), ..entry(None, Some(50)) };
        assert_eq!(batch.label(), "analytics.ingest_batch/x50", "a batch of 50 events");
    }
}
