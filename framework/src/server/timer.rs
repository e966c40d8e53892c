//! Timers: a service's scheduled tasks, run on every instance, or on one instance of the queue
//! group per period.
//!
//! Periods are slots of the wall clock (slot `n` of a 60 s timer starts at `n * 60` s since the
//! Unix epoch), so instances that never talk agree on them. For a timer of the queue group, the
//! instance whose message first lands on the period's subject in a JetStream stream
//! (`natsrpc_timers_{service}`, subjects `natsrpc.timers.{service}.{timer}.{slot}`, a publish
//! that expects the subject empty) runs it; the others are refused and skip. An instance that cannot
//! reach JetStream at a slot skips it too: a task meant to run once is never run twice.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_nats::jetstream;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::context::State;
use crate::error::{RpcError, ServiceError};

/// The shortest period: a timer is for work on a human scale, not a busy loop.
pub const MIN_PERIOD: Duration = Duration::from_millis(100);

/// Where a timer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// On every instance of the service, each period.
    OnEveryInstance,
    /// On one instance of the service's queue group, each period.
    OnOneInstance,
}

/// One firing of a timer, as its task gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// The period's number: the time of its start divided by the period.
    pub slot: u64,
    /// When the period started.
    pub at: SystemTime,
}

/// An `async fn(State<S>, Tick) -> Result<(), E>` where `E: Into<ServiceError>`, run by a timer.
pub trait TimerTask<S>: Clone + Send + Sync + 'static {
    /// Runs the task once.
    fn run(&self, state: S, tick: Tick) -> futures::future::BoxFuture<'static, Result<(), ServiceError>>;
}

impl<S, F, Fut, E> TimerTask<S> for F
where
    F: Fn(State<S>, Tick) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<ServiceError>,
{
    fn run(&self, state: S, tick: Tick) -> futures::future::BoxFuture<'static, Result<(), ServiceError>> {
        let run = (self)(State(state), tick);
        Box::pin(async move { run.await.map_err(Into::into) })
    }
}

/// What a timer has done so far: `$SRV.STATS`'s `timers` (beyond ADR-32, which tools ignore) and
/// the `natsrpc_timer_runs_total` metric.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimerStats {
    /// The timer's name.
    pub name: String,
    /// `every_instance` or `one_instance`.
    pub runs_on: String,
    /// Its period, in milliseconds.
    pub period_ms: u64,
    /// Runs that ended well on this instance.
    pub runs: u64,
    /// Runs that failed or panicked on this instance.
    pub failed: u64,
    /// Periods this instance did not run: another instance had them, the previous run was still
    /// going, or JetStream could not be asked.
    pub skipped: u64,
    /// The last failure, escaped.
    pub last_error: String,
}

#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) name: String,
    runs_on: Runs,
    period: Duration,
    runs: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    last_error: Mutex<String>,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> TimerStats {
        TimerStats {
            name: self.name.clone(),
            runs_on: match self.runs_on {
                Runs::OnEveryInstance => "every_instance",
                Runs::OnOneInstance => "one_instance",
            }
            .to_string(),
            period_ms: u64::try_from(self.period.as_millis()).unwrap_or(u64::MAX),
            runs: self.runs.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            last_error: self.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }
}

type Task = Box<dyn Fn(Tick) -> futures::future::BoxFuture<'static, Result<(), ServiceError>> + Send + Sync>;

/// A timer as the builder keeps it until the service starts, with the state it was added with.
pub(crate) struct Timer {
    pub(crate) name: String,
    pub(crate) period: Duration,
    pub(crate) runs_on: Runs,
    task: Task,
}

impl Timer {
    pub(crate) fn new<S, T>(name: &str, period: Duration, runs_on: Runs, state: Arc<S>, task: T) -> Self
    where
        S: Clone + Send + Sync + 'static,
        T: TimerTask<S>,
    {
        let task: Task = Box::new(move |tick| task.run(S::clone(&state), tick));
        Self { name: name.to_string(), period, runs_on, task }
    }
}

/// Refuses timers that cannot work: a name that is not a plain word or is taken, a period under
/// [`MIN_PERIOD`].
pub(crate) fn check(timers: &[Timer]) -> Result<(), RpcError> {
    let mut names = std::collections::BTreeSet::new();
    for timer in timers {
        if !crate::contract::is_valid_name(&timer.name) || !names.insert(timer.name.as_str()) {
            return Err(RpcError::config(format!(
                "timer name {:?} must be unique and use only A-Z, a-z, 0-9, _ and -",
                crate::escape::escape(&timer.name, 64)
            )));
        }
        if timer.period < MIN_PERIOD {
            return Err(RpcError::config(format!(
                "timer `{}` fires every {:?}: the shortest period is {MIN_PERIOD:?}",
                timer.name, timer.period
            )));
        }
    }
    Ok(())
}

/// The stream a service's timers of the queue group take their periods in.
fn stream_name(service: &str) -> String {
    format!("natsrpc_timers_{service}")
}

/// Where the stream keeps the message that took `slot` of `timer`.
fn slot_subject(service: &str, timer: &str, slot: u64) -> String {
    format!("natsrpc.timers.{service}.{timer}.{slot}")
}

/// Starts every timer of a service: answers their counters and tasks.
pub(crate) async fn start(
    timers: Vec<Timer>,
    client: &async_nats::Client,
    service: &str,
    stop: CancellationToken,
) -> Result<(Vec<Arc<Counters>>, Vec<tokio::task::JoinHandle<()>>), RpcError> {
    let longest = timers.iter().filter(|t| t.runs_on == Runs::OnOneInstance).map(|t| t.period).max();
    let slots = match longest {
        Some(longest) => Some(slots(client, service, longest).await?),
        None => None,
    };
    let mut counters = Vec::with_capacity(timers.len());
    let mut running = Vec::with_capacity(timers.len());
    for timer in timers {
        let counted = Arc::new(Counters {
            name: timer.name.clone(),
            runs_on: timer.runs_on,
            period: timer.period,
            runs: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
        });
        let slots = if timer.runs_on == Runs::OnOneInstance { slots.clone() } else { None };
        let fire = Fire { timer, slots, counters: Arc::clone(&counted) };
        running.push(tokio::spawn(fire.run(service.to_string(), stop.clone())));
        counters.push(counted);
    }
    Ok((counters, running))
}

/// The stream the periods are taken in, one message per period and timer: its messages live
/// twice the longest period (at least five minutes), so that a period's message outlasts every
/// instance's attempt at it. A plain stream rather than a key-value bucket, whose creation some
/// servers still in use (2.9) answer in a form the client does not read; the rule is the same
/// as a bucket's `create`: a publish that expects the subject to be empty.
async fn slots(
    client: &async_nats::Client,
    service: &str,
    longest: Duration,
) -> Result<jetstream::Context, RpcError> {
    let js = jetstream::new(client.clone());
    let max_age = (longest * 2).max(Duration::from_secs(300));
    let config = jetstream::stream::Config {
        name: stream_name(service),
        description: Some(format!("natsrpc: which instance of {service} runs each period of its timers")),
        subjects: vec![format!("natsrpc.timers.{service}.>")],
        max_messages_per_subject: 1,
        max_age,
        duplicate_window: Duration::from_secs(120).min(max_age),
        ..Default::default()
    };
    js.get_or_create_stream(config).await.map_err(|error| {
        RpcError::transport_explained(
            format!("could not make the timers' stream {}", stream_name(service)),
            error,
        )
    })?;
    Ok(js)
}

struct Fire {
    timer: Timer,
    slots: Option<jetstream::Context>,
    counters: Arc<Counters>,
}

impl Fire {
    async fn run(self, service: String, stop: CancellationToken) {
        let period_ms = u64::try_from(self.timer.period.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut last_slot = None;
        loop {
            let now_ms = unix_ms(SystemTime::now());
            let next_slot = now_ms / period_ms + 1;
            let wait = Duration::from_millis(next_slot.saturating_mul(period_ms).saturating_sub(now_ms));
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            // The slot the clock is in now: the next one, unless the sleep overslept a period.
            let slot = unix_ms(SystemTime::now()) / period_ms;
            if last_slot == Some(slot) {
                continue;
            }
            // Periods that passed while the last run went on (or the process was starved).
            let passed = last_slot.map_or(0, |last: u64| slot.saturating_sub(last).saturating_sub(1));
            self.counters.skipped.fetch_add(passed, Ordering::Relaxed);
            last_slot = Some(slot);
            if !self.take(&service, slot).await {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(slot.saturating_mul(period_ms));
            let run = (self.timer.task)(Tick { slot, at });
            // A run that outlasts its period makes the next periods wait: they are skipped, not
            // stacked up (the slot check above).
            match AssertUnwindSafe(run).catch_unwind().await {
                Ok(Ok(())) => {
                    self.counters.runs.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(error)) => self.failed(&service, &error.to_string()),
                Err(panic) => {
                    self.failed(&service, &format!("panicked: {}", super::panic_text(panic.as_ref())))
                }
            }
        }
    }

    /// Whether this instance runs `slot`: always on every instance; for one instance, when it
    /// created the slot's key first.
    async fn take(&self, service: &str, slot: u64) -> bool {
        let Some(js) = &self.slots else { return true };
        let taking = jetstream::message::PublishMessage::build()
            .payload(bytes::Bytes::from(nuid::next().to_string()))
            .expected_last_subject_sequence(0);
        let taken = match js.send_publish(slot_subject(service, &self.timer.name, slot), taking).await {
            Ok(ack) => ack.await.map(|_| ()),
            Err(error) => Err(error),
        };
        match taken {
            Ok(()) => true,
            Err(error) if error.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => false,
            Err(error) => {
                tracing::warn!(%service, timer = %self.timer.name, slot, %error,
                    "could not take a timer's period: skipped rather than risk running it twice");
                false
            }
        }
    }

    fn failed(&self, service: &str, why: &str) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        let why = crate::escape::escape(why, 512).into_owned();
        tracing::warn!(%service, timer = %self.timer.name, error = %why, "a timer's run failed");
        if let Ok(mut last) = self.counters.last_error.lock() {
            *last = why;
        }
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
