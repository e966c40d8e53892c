//! CPU seconds and memory of groups of processes (a stack's, each broker's, the load
//! generator's), sampled from `/proc` while a measurement runs.

use std::time::{Duration, Instant};

use bench_results::{ResourceGroup, Sample, Usage};

use crate::system::process::{cpu_time, pids_named, rss_bytes};

/// A named set of processes.
#[derive(Debug, Clone)]
pub struct Group {
    /// Whose they are.
    pub group: ResourceGroup,
    /// Its processes.
    pub pids: Vec<u32>,
}

impl Group {
    /// The processes of broker `name` (`nats`, `redis`, `rabbitmq`), found by process name.
    pub fn broker(name: &str) -> Option<Self> {
        let (_, process) = crate::config::stack::BROKERS.iter().find(|(broker, _)| *broker == name)?;
        Some(Self { group: ResourceGroup::Broker((*process).to_string()), pids: pids_named(process) })
    }

    /// The processes of a broker the stack started itself (`nats`, `postgres`...), named by its
    /// process name as a shared one would be.
    pub fn private_broker(name: &str, pids: Vec<u32>) -> Self {
        let process =
            crate::config::stack::BROKERS.iter().find(|(broker, _)| *broker == name).map_or(name, |(_, p)| p);
        Self { group: ResourceGroup::Broker(process.to_string()), pids }
    }

    /// This process.
    pub fn generator() -> Self {
        Self { group: ResourceGroup::Generator, pids: vec![std::process::id()] }
    }
}

/// Samples groups of processes.
#[derive(Debug)]
pub struct Sampler {
    start: Instant,
    groups: Vec<(Group, Vec<Duration>)>,
    usage: Vec<Usage>,
}

impl Sampler {
    /// Starts measuring `groups` now.
    pub fn start(groups: Vec<Group>) -> Self {
        let usage = groups
            .iter()
            .map(|g| Usage { name: g.group.name(), cpu_s: 0.0, rss_max_mib: 0.0, samples: Vec::new() })
            .collect();
        let groups = groups
            .into_iter()
            .map(|g| {
                let base = g.pids.iter().map(|pid| cpu_time(*pid).unwrap_or_default()).collect();
                (g, base)
            })
            .collect();
        Self { start: Instant::now(), groups, usage }
    }

    /// Takes one sample of every group.
    pub fn sample(&mut self) {
        let t_s = self.start.elapsed().as_secs_f64();
        for ((group, base), usage) in self.groups.iter().zip(&mut self.usage) {
            let cpu: Duration = group
                .pids
                .iter()
                .zip(base)
                .map(|(pid, base)| cpu_time(*pid).map_or(Duration::ZERO, |now| now.saturating_sub(*base)))
                .sum();
            let rss: u64 = group.pids.iter().filter_map(|pid| rss_bytes(*pid)).sum();
            let rss_mib = rss as f64 / (1024.0 * 1024.0);
            usage.cpu_s = cpu.as_secs_f64();
            usage.rss_max_mib = usage.rss_max_mib.max(rss_mib);
            usage.samples.push(Sample { t_s, cpu_s: usage.cpu_s, rss_mib });
        }
    }

    /// The latest resident memory of `group`, MiB.
    pub fn rss_mib(&self, group: &ResourceGroup) -> f64 {
        self.usage
            .iter()
            .find(|u| u.group() == *group)
            .and_then(|u| u.samples.last())
            .map_or(0.0, |s| s.rss_mib)
    }

    /// A last sample, and every group's figures.
    pub fn finish(mut self) -> Vec<Usage> {
        self.sample();
        self.usage
    }
}
