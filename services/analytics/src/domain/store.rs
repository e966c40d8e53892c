//! Where events are kept: per-minute aggregates behind a small trait. The in-memory store is here;
//! the Redis store lives with the HTTP+Redis stack.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::RwLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::contracts::{Bucket, Dimension, Event, RankEntry, TypeAggregate, Window};
use crate::error::AnalyticsError;

/// Values kept per event type and minute for percentiles (a uniform reservoir sample).
pub const SAMPLE_SIZE: usize = 1024;
/// Aggregates are kept per minute.
pub const MINUTE_MS: u64 = 60_000;

/// Events in, aggregates out. Windows resolve to the whole minutes they touch.
pub trait EventStore: Send + Sync + 'static {
    /// Keeps valid events; answers how many were new (an event id seen before is not counted again).
    fn record(&self, events: Vec<Event>) -> impl Future<Output = Result<u32, AnalyticsError>> + Send;

    /// Count, sum and percentiles of `value` per event type (one type, or all), by type.
    fn aggregates(
        &self,
        event_type: Option<&str>,
        window: &Window,
    ) -> impl Future<Output = Result<Vec<TypeAggregate>, AnalyticsError>> + Send;

    /// One bucket per minute of the window, empty ones included, oldest first.
    fn timeseries(
        &self,
        event_type: &str,
        window: &Window,
    ) -> impl Future<Output = Result<Vec<Bucket>, AnalyticsError>> + Send;

    /// The `n` most frequent keys, most frequent first, ties by key.
    fn top(
        &self,
        by: Dimension,
        n: u32,
        window: &Window,
    ) -> impl Future<Output = Result<Vec<RankEntry>, AnalyticsError>> + Send;

    /// Events of one user in a window.
    fn user_events(
        &self,
        user_id: &str,
        window: &Window,
    ) -> impl Future<Output = Result<u64, AnalyticsError>> + Send;
}

#[derive(Debug, Default)]
struct TypeMinute {
    count: u64,
    sum: f64,
    /// Values seen, of which `sample` keeps a uniform sample.
    values: u64,
    sample: Vec<f64>,
}

#[derive(Debug, Default)]
struct Minute {
    types: HashMap<String, TypeMinute>,
    users: HashMap<String, u64>,
}

#[derive(Debug)]
struct Inner {
    /// By minute number (milliseconds / 60,000).
    minutes: BTreeMap<u64, Minute>,
    /// Event ids within the retention, with their minute, to count each event once.
    seen: HashMap<String, u64>,
    rng: StdRng,
}

/// Events held at most by default (their ids, to count each once, and what they add to their
/// minute: a user's and a type's count, a sampled value): a few hundred MiB at most.
pub const DEFAULT_MAX_EVENTS: usize = 2_000_000;

/// Aggregates in this process. Memory is bounded by the retention (older minutes, and the ids of
/// their events, are dropped as time passes) and by size: past [`MemoryStore::with_max_events`]
/// events, the oldest minutes are given up early, and when the current minute alone holds that
/// many, new events are refused (503 `analytics_full`) rather than counted twice later.
#[derive(Debug)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    retention_ms: u64,
    max_events: usize,
}

impl MemoryStore {
    /// A store keeping `retention_ms` of data, at most [`DEFAULT_MAX_EVENTS`] events; `seed` drives
    /// the percentile samples.
    pub fn new(retention_ms: u64, seed: u64) -> Self {
        let inner =
            Inner { minutes: BTreeMap::new(), seen: HashMap::new(), rng: StdRng::seed_from_u64(seed) };
        Self { inner: RwLock::new(inner), retention_ms, max_events: DEFAULT_MAX_EVENTS }
    }

    /// Holds at most `n` events.
    pub fn with_max_events(mut self, n: usize) -> Self {
        self.max_events = n.max(1);
        self
    }

    /// Minutes and event ids held now, for inspection (tests, memory checks).
    pub fn held(&self) -> (usize, usize) {
        let inner = self.read();
        (inner.minutes.len(), inner.seen.len())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A poisoned lock means a panic elsewhere mid-update; each update keeps the maps whole.
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops what is older than the retention, as of `now_ms`, and then the oldest minutes while
    /// `incoming` more events would hold more than the most; answers whether there is room.
    fn forget(&self, inner: &mut Inner, now_ms: u64, incoming: usize) -> bool {
        let oldest = now_ms.saturating_sub(self.retention_ms) / MINUTE_MS;
        if inner.minutes.first_key_value().is_some_and(|(minute, _)| *minute < oldest) {
            inner.minutes = inner.minutes.split_off(&oldest);
            inner.seen.retain(|_, minute| *minute >= oldest);
        }
        while inner.seen.len().saturating_add(incoming) > self.max_events && inner.minutes.len() > 1 {
            if let Some((minute, _)) = inner.minutes.pop_first() {
                inner.seen.retain(|_, seen| *seen > minute);
                tracing::warn!(
                    minute,
                    max_events = self.max_events,
                    "analytics is full: gave up its oldest minute"
                );
            }
        }
        inner.seen.len().saturating_add(incoming) <= self.max_events
    }
}

/// The minute numbers (milliseconds / [`MINUTE_MS`]) a window touches.
pub fn minutes_of(window: &Window) -> std::ops::RangeInclusive<u64> {
    (window.from_ms / MINUTE_MS)..=((window.to_ms - 1) / MINUTE_MS)
}

/// One event type's figures over a window, from its count, sum and sampled values (any order):
/// what every store answers, so that they agree to the last digit.
pub fn aggregate(event_type: &str, count: u64, sum: f64, mut values: Vec<f64>) -> TypeAggregate {
    values.sort_by(f64::total_cmp);
    TypeAggregate {
        event_type: event_type.to_string(),
        count,
        sum,
        p50: percentile(&values, 0.50),
        p90: percentile(&values, 0.90),
        p99: percentile(&values, 0.99),
    }
}

/// The `n` largest counts, most frequent first, ties by key.
pub fn rank(counts: impl IntoIterator<Item = (String, u64)>, n: u32) -> Vec<RankEntry> {
    let mut ranked: Vec<RankEntry> =
        counts.into_iter().map(|(key, count)| RankEntry { key, count }).collect();
    ranked.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    ranked.truncate(n as usize);
    ranked
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted.get(rank.min(last)).copied()
}

impl EventStore for MemoryStore {
    async fn record(&self, events: Vec<Event>) -> Result<u32, AnalyticsError> {
        let mut inner = self.write();
        if !self.forget(&mut inner, crate::contracts::now_ms(), events.len()) {
            return Err(AnalyticsError::Full(self.max_events));
        }
        let inner = &mut *inner;
        let mut new = 0;
        for event in events {
            let minute = event.timestamp_ms / MINUTE_MS;
            if inner.seen.contains_key(&event.event_id) {
                continue;
            }
            inner.seen.insert(event.event_id, minute);
            new += 1;
            let bucket = inner.minutes.entry(minute).or_default();
            *bucket.users.entry(event.user_id).or_default() += 1;
            let figures = bucket.types.entry(event.event_type).or_default();
            figures.count += 1;
            if let Some(value) = event.value {
                figures.sum += value;
                figures.values += 1;
                if figures.sample.len() < SAMPLE_SIZE {
                    figures.sample.push(value);
                } else {
                    let slot = inner.rng.random_range(0..figures.values) as usize;
                    if let Some(kept) = figures.sample.get_mut(slot) {
                        *kept = value;
                    }
                }
            }
        }
        Ok(new)
    }

    async fn aggregates(
        &self,
        event_type: Option<&str>,
        window: &Window,
    ) -> Result<Vec<TypeAggregate>, AnalyticsError> {
        let inner = self.read();
        let mut merged: BTreeMap<&str, (u64, f64, Vec<f64>)> = BTreeMap::new();
        for (_, minute) in inner.minutes.range(minutes_of(window)) {
            for (kind, figures) in &minute.types {
                if event_type.is_some_and(|wanted| wanted != kind) {
                    continue;
                }
                let entry = merged.entry(kind.as_str()).or_default();
                entry.0 += figures.count;
                entry.1 += figures.sum;
                entry.2.extend_from_slice(&figures.sample);
            }
        }
        Ok(merged
            .into_iter()
            .map(|(kind, (count, sum, values))| aggregate(kind, count, sum, values))
            .collect())
    }

    async fn timeseries(&self, event_type: &str, window: &Window) -> Result<Vec<Bucket>, AnalyticsError> {
        let inner = self.read();
        Ok(minutes_of(window)
            .map(|minute| {
                let figures = inner.minutes.get(&minute).and_then(|m| m.types.get(event_type));
                Bucket {
                    minute_ms: minute * MINUTE_MS,
                    count: figures.map_or(0, |f| f.count),
                    sum: figures.map_or(0.0, |f| f.sum),
                }
            })
            .collect())
    }

    async fn top(&self, by: Dimension, n: u32, window: &Window) -> Result<Vec<RankEntry>, AnalyticsError> {
        let inner = self.read();
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for (_, minute) in inner.minutes.range(minutes_of(window)) {
            match by {
                Dimension::EventType => {
                    for (kind, figures) in &minute.types {
                        *counts.entry(kind).or_default() += figures.count;
                    }
                }
                Dimension::User => {
                    for (user, count) in &minute.users {
                        *counts.entry(user).or_default() += count;
                    }
                }
            }
        }
        Ok(rank(counts.into_iter().map(|(key, count)| (key.to_string(), count)), n))
    }

    async fn user_events(&self, user_id: &str, window: &Window) -> Result<u64, AnalyticsError> {
        let inner = self.read();
        Ok(inner.minutes.range(minutes_of(window)).filter_map(|(_, minute)| minute.users.get(user_id)).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::now_ms;

    fn events(minute_ago: u64, ids: std::ops::Range<u32>) -> Vec<Event> {
        let at = now_ms() - minute_ago * MINUTE_MS;
        ids.map(|i| Event {
            event_id: format!("evt_{i:08}"),
            event_type: "page_view".into(),
            timestamp_ms: at,
            user_id: format!("usr_{i:08}"),
            session_id: "ses_0001".into(),
            value: Some(1.0),
            properties: BTreeMap::new(),
        })
        .collect()
    }

    #[tokio::test]
    async fn memory_is_bounded_by_size_too_oldest_minutes_first() {
        let store = MemoryStore::new(3_600_000, 1).with_max_events(10);
        assert_eq!(store.record(events(2, 0..6)).await.ok(), Some(6));
        assert_eq!(store.record(events(1, 6..10)).await.ok(), Some(4));
        // Full: the oldest minute goes to make room.
        assert_eq!(store.record(events(0, 10..14)).await.ok(), Some(4));
        assert_eq!(store.held(), (2, 8));
        // The current minute alone holds the most: refused, not counted twice later.
        assert_eq!(store.record(events(0, 14..20)).await.ok(), Some(6), "the older minute goes too");
        assert!(matches!(store.record(events(0, 20..21)).await, Err(AnalyticsError::Full(10))));
        assert_eq!(store.held(), (1, 10));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&values, 1.0), Some(100.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
