//! Outages mid-run: a scenario's `outages:` played against the running stack while the load runs
//! ([`play`]), every answer's time and verdict kept ([`Timeline`]), and each outage's recovery
//! read from them afterwards ([`recovery`]).
//!
//! Recovery is measured from when the component is back (a restarted broker accepting
//! connections again; a stalled process let run; a cut joined again): the first success answered
//! after it, and the first second from it whose requests were served (answered with a success
//! within a second) at 90% of the rate of the five seconds before the outage.
//! What the stack acknowledged and then lost, or applied twice, comes from the orders followed
//! into analytics (`convergence`, which a scenario with outages has).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bench_results::{ErrorKind, OutageResult};

use crate::BenchError;
use crate::config::outage::{Action, Outage};
use crate::system::proxy::Proxy;
use crate::system::stacks::RunningStack;
use crate::target::check::Verdict;

/// The share of the pre-fault rate a second must reach to count as recovered.
const RECOVERED_SHARE: f64 = 0.9;

/// The window before an outage whose rate it is measured against.
const BEFORE: Duration = Duration::from_secs(5);

/// The window over which the rate after an outage is measured, and its step (the resolution of
/// `recovery_ms` beyond the first success).
const WINDOW: Duration = Duration::from_secs(1);
const STEP: Duration = Duration::from_millis(50);

/// One outage as played: what, to which member of the stack, and when (from the load's start).
#[derive(Debug, Clone, PartialEq)]
pub struct Played {
    /// What was done.
    pub action: Action,
    /// The member's role.
    pub role: String,
    /// When it began.
    pub began: Duration,
    /// When the runner restored the component.
    pub restored: Duration,
    /// When it accepted connections again (`restored` for one that listens on nothing).
    pub back: Duration,
}

/// The role of the stack's member that `target` names: `broker` (its first broker), `store` (its
/// Redis), `database` (its archive's PostgreSQL), `instance` (the first instance of its first
/// service process), `leader` (on a NATS cluster, the server leading the shop's event stream), a
/// broker's name, or a role.
pub fn role_of(target: &str, stack: &RunningStack) -> Result<String, BenchError> {
    let members = stack.members();
    let found = match target {
        "broker" => stack
            .spec
            .brokers
            .first()
            .and_then(|b| members.iter().find(|m| m.is_broker(b)))
            .map(|m| m.role.clone()),
        "store" => members.iter().find(|m| m.broker && m.role == "redis").map(|m| m.role.clone()),
        crate::config::outage::DATABASE => members
            .iter()
            .find(|m| m.broker && m.role == crate::system::private_brokers::POSTGRES)
            .map(|m| m.role.clone()),
        "instance" => members.iter().find(|m| !m.broker).map(|m| m.role.clone()),
        // Which server leads is known only when the outage begins (see `play`): its first one
        // stands for it until then.
        crate::config::outage::LEADER if stack.spec.nats_cluster.is_some() => {
            members.iter().find(|m| m.is_broker("nats")).map(|m| m.role.clone())
        }
        role => members.iter().find(|m| m.role == role).map(|m| m.role.clone()),
    };
    found.ok_or_else(|| {
        let roles: Vec<&str> = members.iter().map(|m| m.role.as_str()).collect();
        BenchError::Config(format!(
            "{}: no component {target:?} to take down (its processes: {})",
            stack.name,
            roles.join(", ")
        ))
    })
}

/// What `outage` does and to which member of `stack` (with, for a cut, the proxy it cuts).
fn resolve<'p>(
    outage: &Outage,
    stack: &RunningStack,
    proxies: &'p BTreeMap<String, Proxy>,
) -> Result<(Action, String, Option<&'p Proxy>), BenchError> {
    let (action, target) = outage
        .action()
        .ok_or_else(|| BenchError::Config("an outage names none of kill, stall or cut".into()))?;
    let role = role_of(target, stack)?;
    let proxy = match action {
        Action::Cut => Some(proxies.get(&role).ok_or_else(|| {
            BenchError::Config(format!(
                "{}: {role} is not a broker with a proxy in front: nothing to cut",
                stack.name
            ))
        })?),
        Action::Kill | Action::Stall => None,
    };
    Ok((action, role, proxy))
}

/// The JetStream stream of the shop's order events.
pub fn order_stream() -> Option<&'static str> {
    use natsrpc::events::{Delivery, Event};
    match <ecommerce::contracts::events::OrderPlacedEvent as Event>::DELIVERY {
        Delivery::JetStream { stream } => Some(stream),
        Delivery::Core => None,
    }
}

/// The server that leads the shop's event stream on a NATS cluster (its name is its role), when
/// the cluster says.
async fn stream_leader(spec: &crate::config::StackSpec) -> Option<String> {
    let stream = order_stream()?;
    let nats = spec.connect_nats_with(Some(Duration::from_secs(1))).await.ok()?;
    let reply = nats.request(format!("$JS.API.STREAM.INFO.{stream}"), "".into()).await.ok()?;
    let info: serde_json::Value = serde_json::from_slice(&reply.payload).ok()?;
    info["cluster"]["leader"].as_str().map(str::to_string)
}

/// Whether every outage names a component of `stack` it can take down (checked before the load,
/// so that a wrong name fails at once rather than after the load and the settling).
pub fn check(
    outages: &[Outage],
    stack: &RunningStack,
    proxies: &BTreeMap<String, Proxy>,
) -> Result<(), BenchError> {
    outages.iter().try_for_each(|outage| resolve(outage, stack, proxies).map(|_| ()))
}

/// Plays `outages` against `stack`, each at its time from `start`; answers each as played. A
/// component that cannot be found or started again ends the schedule with the error (a stalled
/// one is let run again whatever happens: stopping the stack sends SIGCONT too).
pub async fn play(
    outages: &[Outage],
    stack: &mut RunningStack,
    proxies: &BTreeMap<String, Proxy>,
    start: Instant,
) -> Result<Vec<Played>, BenchError> {
    let mut played = Vec::new();
    for outage in outages {
        let (action, mut role, proxy) = resolve(outage, stack, proxies)?;
        tokio::time::sleep_until((start + outage.at).into()).await;
        if outage.action().is_some_and(|(_, target)| target == crate::config::outage::LEADER) {
            let leader = stream_leader(&stack.spec).await;
            role = leader.filter(|leader| stack.members().iter().any(|m| &m.role == leader)).unwrap_or(role);
        }
        let began = start.elapsed();
        crate::say!("   outage: {} {role} for {:?}", action.name(), outage.lasts);
        match action {
            Action::Kill => stack.kill(&role)?,
            Action::Stall => stack.pause(&role, true)?,
            Action::Cut => proxy.into_iter().for_each(|proxy| proxy.set_cut(true)),
        }
        tokio::time::sleep_until((start + outage.ends()).into()).await;
        let restored = start.elapsed();
        match action {
            Action::Kill => stack.restart(&role).await?,
            Action::Stall => stack.pause(&role, false)?,
            Action::Cut => proxy.into_iter().for_each(|proxy| proxy.set_cut(false)),
        }
        let back = start.elapsed();
        crate::say!("   outage over: {role} back after {:.0} ms", (back - restored).as_secs_f64() * 1000.0);
        played.push(Played { action, role, began, restored, back });
    }
    Ok(played)
}

/// One answer: when its request was planned, when it came, and the unexpected error it was, if
/// one.
#[derive(Debug, Clone)]
struct Answer {
    planned: Duration,
    done: Duration,
    error: Option<ErrorKind>,
}

impl Answer {
    /// A success within [`WINDOW`] of its plan: served as before, not a backlog let go.
    fn served(&self) -> bool {
        self.error.is_none() && self.done.saturating_sub(self.planned) <= WINDOW
    }
}

/// Every answer of a measurement.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    answers: Mutex<Vec<Answer>>,
}

impl Timeline {
    /// An empty timeline from `start`.
    pub fn new(start: Instant) -> Self {
        Self { start, answers: Mutex::new(Vec::new()) }
    }

    /// The answer at `done` to a request planned at `planned`, with `verdict` (an expected error
    /// is the stack serving as it should).
    pub fn answered(&self, planned: Instant, done: Instant, verdict: &Verdict) {
        let error = match verdict {
            Verdict::Unexpected(kind) => Some(kind.clone()),
            Verdict::Ok | Verdict::Expected(_) => None,
        };
        let answer = Answer {
            planned: planned.saturating_duration_since(self.start),
            done: done.saturating_duration_since(self.start),
            error,
        };
        self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(answer);
    }

    /// The answers, by planned time.
    fn sorted(&self) -> Vec<Answer> {
        let mut answers = self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        answers.sort_by_key(|answer| answer.planned);
        answers
    }
}

/// Each outage's recovery, from the answers of a load that ran for `ran`.
///
/// Requests count by when they were planned: a request sent during the outage and answered
/// (or timed out) after it belongs to the outage, and a second counts as recovered when the
/// requests planned in it were served within a second, as before, not when a backlog held
/// during the outage is let go at once.
pub fn recovery(played: &[Played], timeline: &Timeline, ran: Duration) -> Vec<OutageResult> {
    let answers = timeline.sorted();
    let served: Vec<Duration> = answers.iter().filter(|a| a.served()).map(|a| a.planned).collect();
    let in_window = |from: Duration, to: Duration| {
        served.partition_point(|at| *at < to) - served.partition_point(|at| *at < from)
    };
    played
        .iter()
        .map(|p| {
            let before_from = p.began.saturating_sub(BEFORE);
            let before = p.began - before_from;
            let pre_fault_rps = in_window(before_from, p.began) as f64 / before.as_secs_f64().max(1e-9);
            let first_success =
                answers.iter().filter(|a| a.error.is_none() && a.done >= p.back).map(|a| a.done).min();
            let needed = pre_fault_rps * WINDOW.as_secs_f64() * RECOVERED_SHARE;
            let mut recovered_at = None;
            // From the first request served again: a second that starts before it would count
            // the ones after it as recovered already.
            let mut t = served.get(served.partition_point(|at| *at < p.back)).copied().unwrap_or(ran);
            while t + WINDOW <= ran && pre_fault_rps > 0.0 {
                if in_window(t, t + WINDOW) as f64 >= needed {
                    recovered_at = Some(t);
                    break;
                }
                t += STEP;
            }
            let errors_until = recovered_at.map_or(Duration::MAX, |at| at + WINDOW);
            let mut errors: BTreeMap<ErrorKind, u64> = BTreeMap::new();
            for answer in answers.iter().filter(|a| a.planned >= p.began && a.planned < errors_until) {
                if let Some(kind) = &answer.error {
                    *errors.entry(kind.clone()).or_default() += 1;
                }
            }
            let ms_after_back = |at: Duration| at.saturating_sub(p.back).as_secs_f64() * 1000.0;
            OutageResult {
                action: p.action.name().to_string(),
                target: p.role.clone(),
                began_s: p.began.as_secs_f64(),
                restored_s: p.restored.as_secs_f64(),
                back_s: p.back.as_secs_f64(),
                pre_fault_rps,
                first_success_ms: first_success.map(ms_after_back),
                recovery_ms: recovered_at.map(ms_after_back),
                errors,
                backlog_peak: None,
                drain_ms: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// 100 requests a second from 0 to 10 s, answered in 2 ms; those planned from 4 s until
    /// `resume_at` time out after a second, and from `resume_at` on every `1000 / rate` ms,
    /// answered `late` after their plan.
    fn timeline(resume_at: Duration, rate_per_s: u64, late: Duration) -> Timeline {
        let start = Instant::now();
        let timeline = Timeline::new(start);
        let mut at = MS(0);
        while at < Duration::from_secs(10) {
            let (done, verdict) = if at >= MS(4000) && at < resume_at {
                (at + MS(1000), Verdict::Unexpected("transport:timeout".into()))
            } else if at >= resume_at {
                (at + late, Verdict::Ok)
            } else {
                (at + MS(2), Verdict::Ok)
            };
            timeline.answered(start + at, start + done, &verdict);
            at += if at >= resume_at { MS(1000 / rate_per_s) } else { MS(10) };
        }
        timeline
    }

    fn kill() -> Played {
        Played {
            action: Action::Kill,
            role: "nats".into(),
            began: MS(4000),
            restored: MS(5800),
            back: MS(6000),
        }
    }

    #[test]
    fn recovery_counts_from_the_component_back_to_the_earlier_rate() {
        let result = &recovery(&[kill()], &timeline(MS(6500), 100, MS(2)), Duration::from_secs(10))[0];
        assert!((result.pre_fault_rps - 100.0).abs() < 1.0, "{}", result.pre_fault_rps);
        assert_eq!(result.first_success_ms, Some(502.0));
        // The first full second served at the old rate: from where requests were served again.
        assert_eq!(result.recovery_ms, Some(500.0));
        // Every request planned during the outage, whenever its timeout came.
        assert_eq!(result.errors[&ErrorKind::from("transport:timeout")], 250);
        assert!(result.recovered());
        assert_eq!((result.began_s, result.back_s), (4.0, 6.0));
    }

    #[test]
    fn a_stack_that_comes_back_at_half_its_rate_or_seconds_late_has_not_recovered() {
        let result = &recovery(&[kill()], &timeline(MS(6500), 50, MS(2)), Duration::from_secs(10))[0];
        assert_eq!(result.first_success_ms, Some(502.0), "it serves again");
        assert_eq!(result.recovery_ms, None, "but not at its rate");
        assert!(!result.recovered());
        let slow = &recovery(&[kill()], &timeline(MS(6500), 100, MS(1500)), Duration::from_secs(10))[0];
        assert_eq!(slow.recovery_ms, None, "answers 1.5 s late are not served as before");
    }
}
