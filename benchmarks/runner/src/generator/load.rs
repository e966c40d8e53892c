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

/// Planned send times: phases of constant or linearly ramping rate, evenly spread or, with
/// [`Schedule::poisson`], a Poisson process at the same rates.
#[derive(Debug, Clone)]
pub struct Schedule {
    phases: Vec<Planned>,
    total: u64,
    /// Requests the phases' rates make, unrounded.
    expected: f64,
    /// For Poisson arrivals: the seed of the gaps.
    poisson: Option<u64>,
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
    /// The same, unrounded.
    expected_before: f64,
    /// When it starts.
    starts: Duration,
}

impl Schedule {
    /// The schedule of `phases`, one after the other.
    pub fn new(phases: &[Phase]) -> Self {
        let mut all = Vec::new();
        let (mut before, mut expected, mut elapsed) = (0u64, 0.0, Duration::ZERO);
        for phase in phases {
            let (a, b) = (phase.arrival_rate, phase.ramp_to.unwrap_or(phase.arrival_rate));
            let arrivals = (a + b) / 2.0 * phase.duration.as_secs_f64();
            all.push(Planned {
                from_rps: a,
                to_rps: b,
                length: phase.duration,
                arrivals_before: before,
                expected_before: expected,
                starts: elapsed,
            });
            before += arrivals.round() as u64;
            expected += arrivals;
            elapsed += phase.duration;
        }
        Self { phases: all, total: before, expected, poisson: None }
    }

    /// The same rates as a Poisson process: independent exponential gaps, drawn from `seed`.
    /// The `i`-th arrival of a unit-rate process, mapped through the phases' cumulative rate,
    /// is the `i`-th of a process at those rates (ramps included).
    pub fn poisson(mut self, seed: u64) -> Self {
        self.poisson = Some(seed);
        self
    }

    /// The planned times, in order.
    pub fn times(&self) -> impl Iterator<Item = Duration> + '_ {
        let mut state = self.poisson.unwrap_or_default();
        let mut arrived = 0.0;
        let mut i = 0;
        std::iter::from_fn(move || match self.poisson {
            None => {
                i += 1;
                self.at(i - 1)
            }
            Some(_) => {
                // An exponential gap of mean 1: -ln(U), U in (0, 1].
                arrived += -(1.0 - crate::draw::unit(crate::draw::splitmix64(&mut state))).ln();
                if arrived >= self.expected {
                    return None;
                }
                let phase = self.phases.iter().rev().find(|p| p.expected_before <= arrived)?;
                Some(phase.starts + Duration::from_secs_f64(phase.offset_of(arrived - phase.expected_before)))
            }
        })
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
        Some(phase.starts + Duration::from_secs_f64(phase.offset_of((i - phase.arrivals_before) as f64)))
    }
}

impl Planned {
    /// Seconds into the phase by which `j` arrivals (a fraction, for Poisson) are due.
    fn offset_of(&self, j: f64) -> f64 {
        let (a, b, length) = (self.from_rps, self.to_rps, self.length);
        let t = if (b - a).abs() < 1e-9 {
            j / a
        } else {
            // Arrivals by time t: a t + (b - a) t^2 / (2 length); solved for the j-th.
            let k = (b - a) / length.as_secs_f64();
            (-a + (a * a + 2.0 * k * j).max(0.0).sqrt()) / k
        };
        t.max(0.0)
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
            let mut previous = start;
            for (i, offset) in (0u64..).zip(schedule.times()) {
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
        let times: Vec<Duration> = steps.times().collect();
        assert_eq!((times.len(), times[15]), (30, Duration::from_millis(1250)), "evenly, by default");
    }

    #[test]
    fn poisson_arrivals_keep_the_mean_rate_with_exponential_gaps_and_follow_the_seed() {
        let phases = [Phase { arrival_rate: 1000.0, ramp_to: None, duration: Duration::from_secs(20) }];
        let times: Vec<f64> = Schedule::new(&phases).poisson(7).times().map(|t| t.as_secs_f64()).collect();
        let n = times.len() as f64;
        assert!((n - 20_000.0).abs() < 600.0, "{n} arrivals, 20,000 expected (3 sigma is 424)");
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]) && times.iter().all(|t| *t < 20.0),
            "in order, in time"
        );
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        // An exponential's standard deviation equals its mean; evenly spread, it would be 0.
        assert!((mean - 0.001).abs() < 0.00005 && (sd / mean - 1.0).abs() < 0.05, "mean {mean}, sd {sd}");
        let again: Vec<f64> = Schedule::new(&phases).poisson(7).times().map(|t| t.as_secs_f64()).collect();
        assert_eq!(times, again, "the same seed, the same arrivals");
        let other = Schedule::new(&phases).poisson(8).times().next();
        assert_ne!(Some(times[0]), other.map(|t| t.as_secs_f64()));
        // A ramp from 100 to 300 per second over 10 s: 2,000 arrivals, three times as dense at the end.
        let ramp = [Phase { arrival_rate: 100.0, ramp_to: Some(300.0), duration: Duration::from_secs(10) }];
        let times: Vec<f64> = Schedule::new(&ramp).poisson(1).times().map(|t| t.as_secs_f64()).collect();
        let (first, last) = (
            times.iter().filter(|t| **t < 1.0).count() as f64,
            times.iter().filter(|t| **t >= 9.0).count() as f64,
        );
        assert!(
            (times.len() as f64 - 2000.0).abs() < 150.0 && last / first > 2.0,
            "{} {first} {last}",
            times.len()
        );
    }
}
