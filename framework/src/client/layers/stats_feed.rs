//! What feeds a circuit breaker from the service's own `$SRV.STATS`
//! ([`CircuitBreakerLayer::fed_by_stats`](super::CircuitBreakerLayer::fed_by_stats)): every
//! instance's counts, summed per endpoint, compared with the last look.
//!
//! Whatever answers `$SRV.STATS.{service}` is believed: on a NATS account others can publish in,
//! one could open circuits at will. Feed breakers from accounts whose `$SRV` subjects only the
//! services can answer (see the README's least-privilege configuration).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::breaker::Settings;
use crate::server::ServiceStats;

/// The most endpoints remembered as failing, instances asked and endpoints read per answer: the
/// answers come from the network.
const MAX_REPORTED: usize = 1024;
const MAX_INSTANCES: usize = 256;
const MAX_ENDPOINTS: usize = 256;

/// Endpoints (by subject) whose calls are refused, and until when.
#[derive(Debug, Default)]
pub(crate) struct Reported(HashMap<Box<str>, Instant>);

/// How long calls to `subject` are still refused, if they are.
pub(super) fn left(reported: &Mutex<Reported>, subject: &str) -> Option<Duration> {
    let reported = reported.lock().unwrap_or_else(PoisonError::into_inner);
    let until = reported.0.get(subject)?;
    until.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
}

/// The looking at one service's figures.
pub(super) struct Watch {
    nats: async_nats::Client,
    subject: String,
    every: Duration,
    share: f64,
    settings: Settings,
}

/// Requests and failures, as counted by one instance or summed.
type Counts = (u64, u64);

impl Watch {
    pub(super) fn new(
        nats: async_nats::Client,
        service: &str,
        every: Duration,
        share: f64,
        settings: Settings,
    ) -> Self {
        // A share that is not in (0, 1] means "all of them".
        let share = if share > 0.0 { share.min(1.0) } else { 1.0 };
        let every = every.max(Duration::from_millis(10));
        Self { nats, subject: format!("$SRV.STATS.{service}"), every, share, settings }
    }

    /// Looks every `every` until the breaker is gone.
    pub(super) async fn run(self, reported: Weak<Mutex<Reported>>) {
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Each instance's counts at the last look, by (instance id, endpoint subject).
        let mut last: HashMap<(String, String), Counts> = HashMap::new();
        loop {
            ticks.tick().await;
            if reported.strong_count() == 0 {
                return;
            }
            let asked = (self.subject.as_str(), async_nats::HeaderMap::new(), bytes::Bytes::new());
            let stall = (self.every / 2).min(Duration::from_millis(250));
            let gathered =
                crate::client::transport::gather(&self.nats, asked, self.every, MAX_INSTANCES, stall);
            let answers = match gathered.await {
                Ok(answers) => answers,
                Err(error) => {
                    tracing::debug!(%error, "could not ask for the service's figures");
                    continue;
                }
            };
            let stats = answers.iter().filter_map(|answer| serde_json::from_slice(&answer.payload).ok());
            let since = self.since(&mut last, stats);
            let Some(reported) = reported.upgrade() else { return };
            let mut reported = reported.lock().unwrap_or_else(PoisonError::into_inner);
            self.report(&mut reported, since);
        }
    }

    /// Per endpoint subject, the requests and failures since the last look, over all instances; an
    /// instance seen for the first time gives its counts as the base for the next look.
    fn since(
        &self,
        last: &mut HashMap<(String, String), Counts>,
        answers: impl Iterator<Item = ServiceStats>,
    ) -> HashMap<String, Counts> {
        let mut seen = HashMap::new();
        let mut since: HashMap<String, Counts> = HashMap::new();
        for stats in answers {
            for endpoint in stats.endpoints.into_iter().take(MAX_ENDPOINTS) {
                let now = (endpoint.num_requests, endpoint.data.num_failures);
                let key = (stats.id.clone(), endpoint.subject.clone());
                // A count that went down is a new start: the base again.
                let before = last.get(&key).copied().filter(|before| before.0 <= now.0).unwrap_or(now);
                let sum = since.entry(endpoint.subject).or_default();
                sum.0 = sum.0.saturating_add(now.0 - before.0);
                sum.1 = sum.1.saturating_add(now.1.saturating_sub(before.1));
                seen.insert(key, now);
            }
        }
        // Instances that did not answer are forgotten.
        *last = seen;
        since
    }

    fn report(&self, reported: &mut Reported, since: HashMap<String, Counts>) {
        let now = Instant::now();
        reported.0.retain(|_, until| *until > now);
        for (subject, (requests, failures)) in since {
            let failing =
                requests >= self.settings.failures as u64 && failures as f64 >= self.share * requests as f64;
            if !failing || reported.0.len() >= MAX_REPORTED {
                continue;
            }
            tracing::warn!(subject = %crate::escape::escape(&subject, 256), requests, failures,
                open_for = ?self.settings.open_for, "the service's figures show the endpoint failing: its circuit opens");
            reported.0.insert(subject.into_boxed_str(), now + self.settings.open_for);
        }
    }
}
