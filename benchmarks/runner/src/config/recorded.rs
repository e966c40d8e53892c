//! What a run records of its configuration: the copies [`bench_results`] keeps in `results.json`.
//! The configuration's types grow with the YAML; these conversions are the one place where the
//! two meet, so that a new key changes what the runner reads without changing what old runs say.

use bench_results as recorded;

use super::{Expectations, Limits, Load, MixEntry, PayloadSize, Phase, RunSettings, Sustained};

impl RunSettings {
    /// As `results.json` records it.
    pub fn recorded(&self) -> recorded::RunSettings {
        recorded::RunSettings {
            stacks: self.stacks.clone(),
            scenarios: self.scenarios.clone(),
            warmup: self.warmup,
            repetitions: self.repetitions,
            seed: self.seed,
            request_timeout: self.request_timeout,
            duration: self.duration,
            durations: self.durations.clone(),
            shuffle_stacks: self.shuffle_stacks,
            generator_cpus: self.generator_cpus.clone(),
        }
    }
}

impl Load {
    /// As `results.json` records it.
    pub fn recorded(&self) -> recorded::Load {
        match self {
            Load::Closed { users, spawn_rate, duration, think_time } => recorded::Load::Closed {
                users: *users,
                spawn_rate: *spawn_rate,
                duration: *duration,
                think_time: *think_time,
            },
            Load::Open { phases, max_in_flight, arrivals } => recorded::Load::Open {
                phases: phases.iter().map(Phase::recorded).collect(),
                max_in_flight: *max_in_flight,
                arrivals: (!arrivals.is_uniform()).then(|| "poisson".to_string()),
            },
            Load::Soak { fraction, probe_users, probe, duration, max_in_flight } => recorded::Load::Soak {
                fraction: *fraction,
                probe_users: *probe_users,
                probe: *probe,
                duration: *duration,
                max_in_flight: *max_in_flight,
            },
            Load::Stepped { steps, step_duration, max_in_flight, sustained } => recorded::Load::Stepped {
                steps: steps.clone(),
                step_duration: *step_duration,
                max_in_flight: *max_in_flight,
                sustained: sustained.recorded(),
            },
        }
    }
}

impl Phase {
    fn recorded(&self) -> recorded::Phase {
        recorded::Phase { arrival_rate: self.arrival_rate, ramp_to: self.ramp_to, duration: self.duration }
    }
}

impl Sustained {
    fn recorded(&self) -> recorded::Sustained {
        recorded::Sustained {
            min_achieved: self.min_achieved,
            max_error_rate: self.max_error_rate,
            max_p99_ms: self.max_p99_ms,
        }
    }
}

impl MixEntry {
    /// As `results.json` records it.
    pub fn recorded(&self) -> recorded::MixEntry {
        recorded::MixEntry {
            endpoint: self.endpoint.subject().to_string(),
            size: self.size.map(|size| match size {
                PayloadSize::Small => recorded::PayloadSize::Small,
                PayloadSize::Medium => recorded::PayloadSize::Medium,
                PayloadSize::Large => recorded::PayloadSize::Large,
            }),
            items: self.items,
            weight: self.weight,
            name: self.name.clone(),
            own_body: self.own.as_ref().map(|own| {
                match own.codec {
                    crate::own_request::BodyCodec::Json => "json",
                    crate::own_request::BodyCodec::Msgpack => "msgpack",
                }
                .to_string()
            }),
            capture: self.capture.clone(),
            think_time: self.think_time,
        }
    }

    /// Its label in progress lines and reports: `service.endpoint[/size]`.
    pub fn label(&self) -> String {
        self.recorded().label()
    }
}

impl crate::config::flow::Flow {
    /// As `results.json` records it.
    pub fn recorded(&self) -> recorded::Flow {
        recorded::Flow {
            name: self.name.clone(),
            weight: self.weight,
            steps: self.steps.iter().map(MixEntry::recorded).collect(),
        }
    }
}

impl Expectations {
    /// As `results.json` records it.
    pub fn recorded(&self) -> recorded::Expectations {
        recorded::Expectations {
            limits: self.limits.recorded(),
            endpoints: self
                .endpoints
                .iter()
                .map(|(label, limits)| (label.clone(), limits.recorded()))
                .collect(),
            abort_on_fail: self.abort_on_fail,
            stacks: self.stacks.iter().map(|(name, limits)| (name.clone(), limits.recorded())).collect(),
        }
    }
}

impl Limits {
    /// As `results.json` records it.
    pub fn recorded(&self) -> recorded::Limits {
        recorded::Limits {
            p50_ms: self.p50_ms,
            p90_ms: self.p90_ms,
            p95_ms: self.p95_ms,
            p99_ms: self.p99_ms,
            max_ms: self.max_ms,
            min_rps: self.min_rps,
            max_unexpected_error_rate: self.max_unexpected_error_rate,
            max_error_rates: self.max_error_rates.clone(),
        }
    }
}

/// The faults injected, as `results.json` records them.
pub fn faults(settings: &faults::FaultSettings) -> recorded::Faults {
    recorded::Faults {
        seed: settings.seed,
        payment_decline_rate: settings.payment_decline_rate,
        payment_transient_rate: settings.payment_transient_rate,
        payment_latency_ms: settings.payment_latency_ms,
        out_of_stock_rate: settings.out_of_stock_rate,
        internal_error_rate: settings.internal_error_rate,
        extra_latency_ms: settings.extra_latency_ms,
        extra_latency_jitter_ms: settings.extra_latency_jitter_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each configuration type and its recorded copy serialize alike: results written before
    /// the copies existed embedded the configuration's types, and must read the same.
    #[test]
    fn the_recorded_copies_serialize_as_the_configuration_did() {
        let config = super::super::BenchmarkConfig::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/benchmark-config.yaml"
        )))
        .unwrap();
        fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
            serde_json::to_value(value).unwrap()
        }
        let same = |a: serde_json::Value, b: serde_json::Value| assert_eq!(a, b);
        same(json(&config.run), json(&config.run.recorded()));
        for scenario in config.scenarios.values() {
            same(json(&scenario.load), json(&scenario.load.recorded()));
            for entry in scenario.requests() {
                match &entry.own {
                    // A body of one's own is recorded as its codec, not as the body.
                    Some(_) => assert!(entry.recorded().own_body.is_some()),
                    None => same(json(entry), json(&entry.recorded())),
                }
            }
            if let Some(limits) = &scenario.performance_expectations {
                same(json(limits), json(&limits.recorded()));
            }
            if let Some(f) = &scenario.faults {
                same(json(f), json(&faults(f)));
            }
        }
    }
}
