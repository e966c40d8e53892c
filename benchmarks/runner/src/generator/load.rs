//! Load models. Open loop: request `i` is planned at an absolute time from the start, and the
//! dispatcher sends it then whether or not earlier ones were answered, so a stalled stack shows
//! its stall in every planned request's response time (no coordinated omission). Closed loop:
//! each user sends, waits for the answer, thinks, and sends again; latency is service time and
//! the rate is whatever the stack sustains.
//!
//! Both call a `shot` for each request: it gets the request's index (which decides its payload,
//! reproducibly) and its planned time, sends it, checks and records the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use crate::config::Phase;

/// One request: its index and planned time.
pub type Shot = Arc<dyn Fn(u64, Instant) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Planned send times: phases of constant or linearly ramping rate.
#[derive(Debug, Clone)]
pub struct Schedule {
    phases: Vec<Planned>,
    total: u64,
}

/// One phase, placed: its rates, its length, and what came before it.
#[derive(Debug, Clone, Copy)]
struct Planned {
    /// Requests per second at its start...
    from_rps: f64,
    /// ...and at its end.
    to_rps: f64,
    length: Duration,
    /// Requests planned in the phases before it.
    arrivals_before: u64,
    /// When it starts.
    starts: Duration,
}

impl Schedule {
    /// The schedule of `phases`, one after the other.
    pub fn new(phases: &[Phase]) -> Self {
        let mut all = Vec::new();
        let (mut before, mut elapsed) = (0u64, Duration::ZERO);
        for phase in phases {
            let (a, b) = (phase.arrival_rate, phase.ramp_to.unwrap_or(phase.arrival_rate));
            let arrivals = ((a + b) / 2.0 * phase.duration.as_secs_f64()).round() as u64;
            all.push(Planned {
                from_rps: a,
                to_rps: b,
                length: phase.duration,
                arrivals_before: before,
                starts: elapsed,
            });
            before += arrivals;
            elapsed += phase.duration;
        }
        Self { phases: all, total: before }
    }

    /// Constant rates, one per step.
    pub fn stepped(steps: &[f64], step: Duration) -> Self {
        let phases: Vec<Phase> =
            steps.iter().map(|rate| Phase { arrival_rate: *rate, ramp_to: None, duration: step }).collect();
        Self::new(&phases)
    }

    /// Requests planned in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When request `i` is planned, from the start; `None` past the end.
    pub fn at(&self, i: u64) -> Option<Duration> {
        if i >= self.total {
            return None;
        }
        let phase = *self.phases.iter().rev().find(|p| p.arrivals_before <= i)?;
        let (a, b, length) = (phase.from_rps, phase.to_rps, phase.length);
        let j = (i - phase.arrivals_before) as f64;
        let t = if (b - a).abs() < 1e-9 {
            j / a
        } else {
            // Arrivals by time t: a t + (b - a) t^2 / (2 length); solved for the j-th.
            let k = (b - a) / length.as_secs_f64();
            (-a + (a * a + 2.0 * k * j).max(0.0).sqrt()) / k
        };
        Some(phase.starts + Duration::from_secs_f64(t.max(0.0)))
    }
}

/// What the dispatcher of an open-loop run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dispatched {
    /// Requests sent.
    pub sent: u64,
    /// Requests not sent because `max_in_flight` were waiting.
    pub dropped: u64,
}

/// Runs `schedule` from `start`: each request is sent at its planned time, with at most
/// `max_in_flight` waiting (beyond, requests are dropped and `on_drop` told); then waits for the
/// answers of all that were sent.
///
/// The send times are kept by a thread of its own, not by tokio's timer: that one works in whole
/// milliseconds, so requests left up to a millisecond late (0.9 ms at the median at 2,000 req/s)
/// and a sub-millisecond service read 1.5 ms at p50. The thread sleeps to each planned time (see
/// `wait_until`), then hands the request to the runtime.
pub async fn open_loop(
    start: Instant,
    schedule: &Schedule,
    max_in_flight: u64,
    shot: Shot,
    on_drop: impl Fn(Instant) + Send + 'static,
) -> Dispatched {
    let in_flight = Arc::new(AtomicU64::new(0));
    let tracker = TaskTracker::new();
    let (finished, dispatched) = tokio::sync::oneshot::channel();
    let dispatch = {
        let (schedule, tracker, runtime) =
            (schedule.clone(), tracker.clone(), tokio::runtime::Handle::current());
        move || {
            let mut dispatched = Dispatched::default();
            let mut i = 0;
            let mut previous = start;
            while let Some(offset) = schedule.at(i) {
                let planned = start + offset;
                wait_until(planned, planned.saturating_duration_since(previous) >= SPIN_WHEN_APART);
                previous = planned;
                if in_flight.load(Ordering::Relaxed) >= max_in_flight {
                    dispatched.dropped += 1;
                    on_drop(planned);
                } else {
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    dispatched.sent += 1;
                    let (shot, in_flight) = (Arc::clone(&shot), Arc::clone(&in_flight));
                    tracker.spawn_on(
                        async move {
                            shot(i, planned).await;
                            in_flight.fetch_sub(1, Ordering::Relaxed);
                        },
                        &runtime,
                    );
                }
                i += 1;
            }
            let _ = finished.send(dispatched);
        }
    };
    let dispatched = match std::thread::Builder::new().name("open-loop".into()).spawn(dispatch) {
        Ok(_thread) => dispatched.await.unwrap_or_else(|_| {
            eprintln!("open loop: the dispatcher thread ended before the schedule did (it panicked)");
            Dispatched::default()
        }),
        Err(error) => {
            eprintln!("open loop: no thread for the dispatcher ({error}); nothing was sent");
            Dispatched::default()
        }
    };
    tracker.close();
    tracker.wait().await;
    dispatched
}

/// How long before a planned send the dispatcher stops sleeping and spins: more than Linux's
/// default timer slack (50 us), which a sleep may overshoot by.
pub const SPIN_BEFORE: Duration = Duration::from_micros(60);

/// Sends at least this far apart get the spin: at most 15% of a core (up to 2,500 req/s). Closer
/// ones are slept for whole: a spin there would take the core the stack measured needs (a soak at
/// 21,000 req/s on two cores lost half its p50 and p99 to it), and when a sleep overshoots, every
/// send that fell due is sent at once, each late by less than the overshoot.
pub const SPIN_WHEN_APART: Duration = Duration::from_micros(400);

/// Blocks until `planned`: the OS timer for all but the last [`SPIN_BEFORE`], then, when `spin`,
/// a spin that yields the core at every turn, else the timer again.
fn wait_until(planned: Instant, spin: bool) {
    loop {
        let now = Instant::now();
        let Some(left) = planned.checked_duration_since(now).filter(|left| !left.is_zero()) else {
            return;
        };
        if left > SPIN_BEFORE {
            std::thread::sleep(left - SPIN_BEFORE);
        } else if spin {
            std::thread::yield_now();
        } else {
            std::thread::sleep(left);
        }
    }
}

/// Runs `users` closed-loop users from `start` for `duration`, starting `spawn_rate` of them per
/// second (all at once when 0), each pausing `think` between an answer and its next request.
pub async fn closed_loop(
    start: Instant,
    users: u32,
    spawn_rate: f64,
    duration: Duration,
    think: Duration,
    shot: Shot,
) {
    let end = start + duration;
    let tracker = TaskTracker::new();
    for user in 0..users {
        let delay = if spawn_rate > 0.0 {
            Duration::from_secs_f64(f64::from(user) / spawn_rate)
        } else {
            Duration::ZERO
        };
        let shot = Arc::clone(&shot);
        tracker.spawn(async move {
            tokio::time::sleep_until((start + delay).into()).await;
            let mut k = 0u64;
            while Instant::now() < end {
                shot((u64::from(user) << 32) | k, Instant::now()).await;
                k += 1;
                if !think.is_zero() {
                    tokio::time::sleep(think).await;
                }
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_and_ramping_phases_plan_the_right_times() {
        let schedule = Schedule::new(&[
            Phase { arrival_rate: 100.0, ramp_to: None, duration: Duration::from_secs(2) },
            Phase { arrival_rate: 100.0, ramp_to: Some(300.0), duration: Duration::from_secs(1) },
        ]);
        assert_eq!(schedule.total(), 200 + 200);
        assert_eq!(schedule.at(0), Some(Duration::ZERO));
        assert_eq!(schedule.at(50), Some(Duration::from_millis(500)));
        let ramp_start = schedule.at(200).unwrap();
        assert_eq!(ramp_start, Duration::from_secs(2));
        // Half-way through the ramp's time, arrivals are 100*0.5 + 200*0.25/2... = 75.
        let halfway = schedule.at(275).unwrap().as_secs_f64();
        assert!((halfway - 2.5).abs() < 0.01, "{halfway}");
        assert!(schedule.at(399).unwrap() < Duration::from_secs(3));
        assert_eq!(schedule.at(400), None);
        let steps = Schedule::stepped(&[10.0, 20.0], Duration::from_secs(1));
        assert_eq!(steps.total(), 30);
        assert_eq!(steps.at(15), Some(Duration::from_millis(1250)));
    }
}
