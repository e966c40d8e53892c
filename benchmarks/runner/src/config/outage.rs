//! A scenario's outages (`outages:`): at a time into the measured load, one of the stack's own
//! components is killed, stalled or cut off for a while, then restored.
//!
//! ```yaml
//! outages:
//!   - { at: 8s, kill: broker, for: 4s }     # SIGKILL, restarted 4 s later on the same port and data
//!   - { at: 20s, stall: instance, for: 3s } # SIGSTOP, SIGCONT 3 s later
//!   - { at: 30s, cut: broker, for: 3s }     # its connections to the stack cut, refused 3 s
//! ```
//!
//! The component is named by what it is to the stack, so that one scenario means the same thing on
//! every stack: `broker` (the first of its `brokers`: NATS, Redis for HTTP+Redis, RabbitMQ for
//! HTTP+RabbitMQ), `store` (its Redis), `database` (the PostgreSQL of a scenario with
//! `archive: true`), `instance` (the first instance of its first service process), `leader` (on a
//! NATS cluster, the server leading the shop's event stream), a broker's name (`nats`, `redis`,
//! `rabbitmq`) or a process's role (`gateway`, `worker-2`, `nats-2`); `cut` takes a broker only. A scenario with outages runs every stack on private
//! brokers the runner starts for it (`system::private_brokers`): never the shared ones.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::duration_text;

/// One outage, as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// When, from the start of the measured load (after the warm-up).
    #[serde(with = "duration_text")]
    pub at: Duration,
    /// SIGKILL the component; restart it (same command, port and data) after `for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<String>,
    /// SIGSTOP the component; SIGCONT after `for`: a process that holds its connections and
    /// answers nothing (a long GC pause, a host swapping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<String>,
    /// Cut the stack's connections to the broker (through a proxy the runner holds) and refuse
    /// new ones; join them again after `for`: a network partition with both ends up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<String>,
    /// How long until the component is restored.
    #[serde(rename = "for", with = "duration_text")]
    pub lasts: Duration,
}

/// The name of the stack's archive database (PostgreSQL) in an outage.
pub const DATABASE: &str = "database";

/// The name, in an outage, of the server of a NATS cluster (`nats_cluster`) that leads the shop's
/// event stream when the outage begins: the one whose loss costs the most (the stream elects a
/// new leader, and the processes connected to it move).
pub const LEADER: &str = "leader";

/// What an outage does to its component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL, then the same process started again.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Stall,
    /// Connections cut and refused, then let through again.
    Cut,
}

impl Action {
    /// Its name in the config and the results.
    pub fn name(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Stall => "stall",
            Action::Cut => "cut",
        }
    }
}

impl Outage {
    /// What it does, and to which component (as written).
    pub fn action(&self) -> Option<(Action, &str)> {
        match (&self.kill, &self.stall, &self.cut) {
            (Some(target), None, None) => Some((Action::Kill, target)),
            (None, Some(target), None) => Some((Action::Stall, target)),
            (None, None, Some(target)) => Some((Action::Cut, target)),
            _ => None,
        }
    }

    /// Whether it cuts connections (the stack then needs proxies in front of its brokers).
    pub fn cuts(&self) -> bool {
        self.cut.is_some()
    }

    /// When it ends (saturated: a schedule past any load's end is refused anyway).
    pub fn ends(&self) -> Duration {
        self.at.saturating_add(self.lasts)
    }
}

/// Why `outages` cannot be played within a load of `duration`, if it cannot: each names one
/// action and a component, starts after the load has run a while, and they do not overlap.
pub fn problem(outages: &[Outage], duration: Duration) -> Option<String> {
    let mut previous_end = Duration::ZERO;
    for (i, outage) in outages.iter().enumerate() {
        let Some((_, target)) = outage.action() else {
            return Some(format!("outages[{i}]: one of kill, stall or cut, naming a component"));
        };
        if target.is_empty() || !target.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Some(format!(
                "outages[{i}]: {target:?} is not a component (broker, store, instance, a broker's name or a process's role)"
            ));
        }
        if outage.lasts.is_zero() {
            return Some(format!("outages[{i}].for: must be above 0"));
        }
        // The rate before it is what recovery is measured against.
        if outage.at < Duration::from_secs(1) {
            return Some(format!("outages[{i}].at: at least 1s, so that the rate before it is known"));
        }
        if outage.at < previous_end {
            return Some(format!("outages[{i}].at: starts before the outage before it has ended"));
        }
        // Recovery is a second at the earlier rate: at least that must be left after it.
        if outage.ends().saturating_add(Duration::from_secs(1)) > duration {
            return Some(format!(
                "outages[{i}]: ends at {:?}, less than a second before the load ends ({duration:?}): recovery could not be seen",
                outage.ends()
            ));
        }
        previous_end = outage.ends();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outage(text: &str) -> Outage {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn an_outage_names_one_action_and_fits_in_the_load() {
        let kill = outage("{ at: 5s, kill: broker, for: 2s }");
        assert_eq!(kill.action(), Some((Action::Kill, "broker")));
        assert_eq!(kill.ends(), Duration::from_secs(7));
        let ten = Duration::from_secs(10);
        assert_eq!(problem(std::slice::from_ref(&kill), ten), None);
        for (outages, says) in [
            ("[{ at: 5s, kill: broker, stall: broker, for: 2s }]", "one of kill, stall or cut"),
            ("[{ at: 5s, for: 2s }]", "one of kill, stall or cut"),
            ("[{ at: 5s, kill: \"a b\", for: 2s }]", "is not a component"),
            ("[{ at: 5s, kill: broker, for: 0s }]", "for: must be above 0"),
            ("[{ at: 0s, kill: broker, for: 2s }]", "at least 1s"),
            ("[{ at: 9s, kill: broker, for: 2s }]", "less than a second before the load ends"),
            ("[{ at: 8s, kill: broker, for: 1500ms }]", "less than a second before the load ends"),
            (
                "[{ at: 2s, kill: broker, for: 3s }, { at: 4s, stall: nats, for: 1s }]",
                "before the outage before",
            ),
        ] {
            let outages: Vec<Outage> = serde_yaml::from_str(outages).unwrap();
            let problem = problem(&outages, ten).unwrap_or_default();
            assert!(problem.contains(says), "{problem} should say {says}");
        }
        let cut = outage("{ at: 5s, cut: store, for: 2s }");
        assert_eq!(cut.action(), Some((Action::Cut, "store")));
        assert!(cut.cuts());
        assert!(!kill.cuts());
        assert!(serde_yaml::from_str::<Outage>("{ at: 5s, sever: broker, for: 2s }").is_err());
    }
}
