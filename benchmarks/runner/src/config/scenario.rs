//! A scenario (`scenarios:`): how requests arrive, which requests in what proportions, the
//! faults injected, and the limits the results must meet.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::duration_text;
use crate::config::mix::MixEntry;

/// One scenario: a load, a mix of requests (and flows), injected errors, and what the results
/// must meet.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What it shows, for the report.
    #[serde(default)]
    pub description: String,
    /// How requests arrive.
    pub load: Load,
    /// Which requests, in what proportions.
    #[serde(default)]
    pub mix: Vec<MixEntry>,
    /// User journeys, drawn among the mix's entries by their weights ([`crate::config::flow`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<crate::config::flow::Flow>,
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
    /// Components of the stack killed or stalled mid-run, then restored ([`crate::config::outage`]):
    /// the stacks run on private brokers, and each outage's recovery is measured. Needs
    /// `convergence`: the orders followed show whether anything acknowledged was lost or counted
    /// twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<crate::config::outage::Outage>,
    /// The stacks archive every order placed or cancelled into a PostgreSQL of their own, which
    /// the runner starts for each measurement (`database` in `outages`), fed by their event path;
    /// every acknowledged order must be there once the load is over (`archive.missing`), and the
    /// backlog's peak and drain time are measured. Needs `convergence` (the shop's events on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archive: bool,
    /// The same load on several instance counts of each stack's first service process, each
    /// measured as a stack of its own named `{stack}@{count}` (see [`ScaleOut`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out: Option<ScaleOut>,
}

/// A scale-out: each stack measured with its first service process (the services on NATS, the
/// API of HTTP+Redis, the workers of HTTP+RabbitMQ) run as each of `instances` processes: in one
/// queue group on NATS, behind the runner's HAProxy for an API that serves HTTP (at every count,
/// one included, so that every count pays the same hop), on the same queue for RabbitMQ's
/// workers. Whether more instances serve more depends on cores to run them: the report states
/// the machine's.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScaleOut {
    /// The instance counts, each from 1 to 16, such as `[1, 2, 4]`.
    pub instances: Vec<u32>,
}

/// The stack a scale-out's `{stack}@{count}` names, and the count; `None` for a stack's own name.
pub fn scaled(name: &str) -> Option<(&str, u32)> {
    let (stack, count) = name.rsplit_once('@')?;
    Some((stack, count.parse().ok()?))
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
        /// How the requests are spread in time: `uniform` (evenly, the default) or `poisson`
        /// (independent arrivals at the same mean rate, bursty as real traffic is; the run's seed
        /// draws them).
        #[serde(default, skip_serializing_if = "Arrivals::is_uniform")]
        arrivals: Arrivals,
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

/// How an open loop spreads its requests in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Evenly: request `i` at the time `i` requests are due.
    #[default]
    Uniform,
    /// A Poisson process at the phase's rate: the gaps between requests are independent and
    /// exponential, so requests bunch and pause.
    Poisson,
}

impl Arrivals {
    /// Whether it is the default, evenly spread.
    pub fn is_uniform(&self) -> bool {
        *self == Arrivals::Uniform
    }
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

impl Scenario {
    /// Every kind of request it sends: the mix's entries, then each flow's steps.
    pub fn requests(&self) -> impl Iterator<Item = &MixEntry> {
        self.mix.iter().chain(self.flows.iter().flat_map(|flow| &flow.steps))
    }
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

/// Limits a scenario's results must meet, for every stack unless `stacks` says otherwise: on all
/// its answers (the fields of [`Limits`], written beside the others), and on some kinds of
/// request (`endpoints`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Expectations {
    /// On all the answers.
    #[serde(flatten)]
    pub limits: Limits,
    /// Limits on one kind of request, by its label (`ecommerce.create_order/small`, a flow's step
    /// `upload/2 fileproc.upload_chunk`), or on a flow's journeys, by the flow's name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, Limits>,
    /// A measurement that misses a limit ends the run there (what was measured is written, and
    /// the run exits 1), rather than going on to the other stacks and scenarios.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
    /// Other limits for some stacks, by name (fields absent there are taken from here).
    #[serde(default)]
    pub stacks: BTreeMap<String, Expectations>,
    /// Keys that are none of the above, refused by the checks (`deny_unknown_fields` cannot
    /// stand beside a flattened field).
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, serde_yaml::Value>,
}

/// Limits on one kind of request's answers (or one flow's journeys), as on all of them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Median latency, in milliseconds, at most.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// 90th percentile, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_ms: Option<f64>,
    /// 95th percentile, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    /// 99th percentile, at most.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// The slowest, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
    /// Answers per second, at least.
    #[serde(default)]
    pub min_rps: Option<f64>,
    /// Unexpected errors per answer, at most.
    #[serde(default)]
    pub max_unexpected_error_rate: Option<f64>,
    /// Unexpected errors of a kind or a class per answer, at most.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_error_rates: BTreeMap<String, f64>,
}

impl Expectations {
    /// The limits that hold for `stack`.
    pub fn for_stack(&self, stack: &str) -> Expectations {
        let Some(own) = self.stacks.get(stack) else {
            return Expectations { stacks: BTreeMap::new(), ..self.clone() };
        };
        let mut endpoints = self.endpoints.clone();
        endpoints.extend(own.endpoints.clone());
        Expectations {
            limits: own.limits.or(&self.limits),
            endpoints,
            abort_on_fail: self.abort_on_fail || own.abort_on_fail,
            stacks: BTreeMap::new(),
            unknown: BTreeMap::new(),
        }
    }
}

impl Limits {
    /// These limits, with `base`'s where these have none.
    fn or(&self, base: &Limits) -> Limits {
        let pick = |f: fn(&Limits) -> Option<f64>| f(self).or(f(base));
        let mut max_error_rates = base.max_error_rates.clone();
        max_error_rates.extend(self.max_error_rates.clone());
        Limits {
            p50_ms: pick(|l| l.p50_ms),
            p90_ms: pick(|l| l.p90_ms),
            p95_ms: pick(|l| l.p95_ms),
            p99_ms: pick(|l| l.p99_ms),
            max_ms: pick(|l| l.max_ms),
            min_rps: pick(|l| l.min_rps),
            max_unexpected_error_rate: pick(|l| l.max_unexpected_error_rate),
            max_error_rates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
