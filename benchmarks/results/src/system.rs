//! What a run ran on, and what its processes used: the machine and software, and the CPU and
//! memory of each group of processes over a measurement.

use serde::{Deserialize, Serialize};

/// The machine and software of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    /// `/proc/cpuinfo`'s model name.
    pub cpu_model: String,
    /// Cores the OS offers this process.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Memory, GiB.
    pub memory_gib: f64,
    /// `nats-server --version`.
    pub nats_server: String,
    /// `redis-server --version`.
    pub redis_server: String,
    /// The installed rabbitmq-server package's version.
    pub rabbitmq_server: String,
    /// `rustc --version` of the toolchain that built the runner.
    pub rustc: String,
    /// The commit measured.
    pub git_commit: String,
    /// Whether the work tree had changes not committed.
    pub git_dirty: bool,
}

/// Whose processes a [`Usage`] counts. Recorded by its name (see [`ResourceGroup::name`]), which
/// is what `results.json` has always held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceGroup {
    /// Every process of the stack together (`stack`).
    Stack,
    /// One process of the stack, in a soak (`stack/<role>`), so that a leak names its process.
    StackProcess(String),
    /// A broker, by its process name (`nats-server`, `redis-server`, `beam.smp`).
    Broker(String),
    /// The load generator (`generator`).
    Generator,
}

impl ResourceGroup {
    /// As recorded.
    pub fn name(&self) -> String {
        match self {
            ResourceGroup::Stack => "stack".into(),
            ResourceGroup::StackProcess(role) => format!("stack/{role}"),
            ResourceGroup::Broker(process) => process.clone(),
            ResourceGroup::Generator => "generator".into(),
        }
    }

    /// Of a recorded name.
    pub fn of_name(name: &str) -> Self {
        match name {
            "stack" => ResourceGroup::Stack,
            "generator" => ResourceGroup::Generator,
            _ => match name.strip_prefix("stack/") {
                Some(role) => ResourceGroup::StackProcess(role.to_string()),
                None => ResourceGroup::Broker(name.to_string()),
            },
        }
    }
}

/// One sample of a group.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Seconds since the measurement started.
    pub t_s: f64,
    /// CPU seconds used since the measurement started.
    pub cpu_s: f64,
    /// Resident memory, MiB, all processes together.
    pub rss_mib: f64,
}

/// A group's figures over a measurement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    /// The group, by its name ([`ResourceGroup::name`]).
    pub name: String,
    /// CPU seconds used over the measurement.
    pub cpu_s: f64,
    /// The largest resident memory seen, MiB.
    pub rss_max_mib: f64,
    /// The samples, one per interval.
    pub samples: Vec<Sample>,
}

impl Usage {
    /// Whose processes it counts.
    pub fn group(&self) -> ResourceGroup {
        ResourceGroup::of_name(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_read_back_as_what_they_name() {
        for group in [
            ResourceGroup::Stack,
            ResourceGroup::StackProcess("worker-1".into()),
            ResourceGroup::Broker("nats-server".into()),
            ResourceGroup::Generator,
        ] {
            assert_eq!(ResourceGroup::of_name(&group.name()), group);
        }
    }
}
