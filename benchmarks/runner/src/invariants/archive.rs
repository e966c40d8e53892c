//! The orders of record: every order the stack acknowledges must reach its archive (PostgreSQL,
//! fed by the stack's own event path), once.
//!
//! While the load runs, the archive's row count is sampled every [`EVERY`] against the orders
//! acknowledged so far: their difference is the backlog, the orders waiting in the broker (or in
//! flight) for the archive. A database taken down makes it grow. After the load, every
//! acknowledged order is looked for by its id, and the drain time after an outage is read from the
//! rows themselves: from the component being back until the last of the orders acknowledged by
//! then was written (`archived_at`, the database's clock, on this machine like the runner's). A
//! count would not do: new orders, archived at once, fill it while the backlog still waits out its
//! redelivery pause. The table's key (order, event) makes a second
//! row for one order impossible, so "once" is the schema's promise; what is checked is that none
//! is missing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use archive::{Archive, ArchivedEvent};
use bench_results::{ArchiveResult, OutageResult};

use crate::BenchError;
use crate::outage::Played;

/// How often the archive's rows are counted during the load.
pub const EVERY: Duration = Duration::from_millis(100);

/// Ids asked about per query after the load.
const CHUNK: usize = 1000;

/// The orders acknowledged, and the archive's count over time.
#[derive(Debug)]
pub struct Archivist {
    archive: Archive,
    /// Each order acknowledged, and when.
    acknowledged: Mutex<Vec<(String, Instant)>>,
    samples: Mutex<Vec<Sample>>,
    /// An instant and the wall clock's time then, to read the database's times against.
    anchor: (Instant, std::time::SystemTime),
}

/// One count: when (from the load's start), orders acknowledged by then, and rows archived
/// (`None` when the database could not be asked).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    at: Duration,
    acknowledged: u64,
    archived: Option<u64>,
}

#[derive(serde::Deserialize)]
struct Placed {
    order_id: String,
}

impl Archivist {
    /// Watches the archive at `url` (reached directly, not through any proxy of the stack's). It
    /// is told of every order acknowledged, the warm-up's too: each must be archived, and each
    /// is a row of the archive's count.
    pub fn new(url: &str) -> Result<Self, BenchError> {
        let archive =
            Archive::new(url).map_err(|error| BenchError::Config(format!("the archive: {error}")))?;
        Ok(Self {
            archive,
            acknowledged: Mutex::new(Vec::new()),
            samples: Mutex::new(Vec::new()),
            anchor: (Instant::now(), std::time::SystemTime::now()),
        })
    }

    /// The order `body` placed was acknowledged at `acked`.
    pub fn placed(&self, body: &[u8], acked: Instant) {
        if let Ok(placed) = serde_json::from_slice::<Placed>(body) {
            lock(&self.acknowledged).push((placed.order_id, acked));
        }
    }

    /// Counts the archive's rows every [`EVERY`] until `stop`, from the measured load's `start`.
    pub async fn watch(&self, start: Instant, stop: &std::sync::atomic::AtomicBool) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            tick.tick().await;
            self.sample(start).await;
        }
    }

    async fn sample(&self, start: Instant) {
        let acknowledged = lock(&self.acknowledged).len() as u64;
        let archived = self.archive.count(ArchivedEvent::Placed).await.ok();
        lock(&self.samples).push(Sample { at: start.elapsed(), acknowledged, archived });
    }

    /// Waits (up to `settle`) until the archive holds every order acknowledged, looking for each
    /// by its id, and samples the backlog meanwhile; `ended` is when the load ended.
    pub async fn finish(&self, start: Instant, ended: Instant, settle: Duration) -> ArchiveResult {
        let ids: Vec<String> = lock(&self.acknowledged).iter().map(|(id, _)| id.clone()).collect();
        let orders = ids.len() as u64;
        let waiting = Instant::now();
        let mut archived = self.held(&ids).await;
        while archived < orders && waiting.elapsed() < settle {
            tokio::time::sleep(EVERY).await;
            self.sample(start).await;
            archived = self.held(&ids).await;
        }
        let caught_up_ms = match archived == orders {
            true => self.last_archived(&ids).await.map(|last| self.ms_after(last, ended)),
            false => None,
        };
        let samples = lock(&self.samples);
        let backlog_peak = backlog_peak(&samples, Duration::ZERO, Duration::MAX);
        let backlog = backlogs(&samples).map(|(at, backlog)| (at.as_secs_f64(), backlog)).collect();
        let missing = orders - archived.min(orders);
        ArchiveResult { orders, archived, missing, backlog_peak, caught_up_ms, backlog }
    }

    /// How many of `ids` the archive holds. An id that could not be asked about counts as not
    /// held: the archive could not show it.
    async fn held(&self, ids: &[String]) -> u64 {
        let mut held = 0;
        for chunk in ids.chunks(CHUNK) {
            if let Ok(found) = self.archive.holds(ArchivedEvent::Placed, chunk).await {
                held += found.len() as u64;
            }
        }
        held
    }

    /// When the last row of `ids` was written (milliseconds since the epoch, the database's clock).
    async fn last_archived(&self, ids: &[String]) -> Option<f64> {
        let mut last: Option<f64> = None;
        for chunk in ids.chunks(CHUNK) {
            let written = self.archive.last_archived(ArchivedEvent::Placed, chunk).await.ok()??;
            last = Some(last.map_or(written, |last| last.max(written)));
        }
        last
    }

    /// Milliseconds from `from` to the wall-clock time `at_ms`, at least 0.
    fn ms_after(&self, at_ms: f64, from: Instant) -> f64 {
        let (instant, wall) = self.anchor;
        let anchor_ms = wall.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0;
        let from_ms = anchor_ms + from.saturating_duration_since(instant).as_secs_f64() * 1000.0
            - instant.saturating_duration_since(from).as_secs_f64() * 1000.0;
        (at_ms - from_ms).max(0.0)
    }

    /// Adds to each outage its backlog's peak and drain time: from the component back (`start`
    /// the load's) until the last order acknowledged by then was archived; none when one of
    /// them never was.
    pub async fn drains(&self, start: Instant, played: &[Played], outages: &mut [OutageResult]) {
        for (played, outage) in played.iter().zip(outages) {
            let back = start + played.back;
            let owed: Vec<String> = lock(&self.acknowledged)
                .iter()
                .filter(|(_, at)| *at <= back)
                .map(|(id, _)| id.clone())
                .collect();
            let drained = match self.held(&owed).await == owed.len() as u64 {
                true if owed.is_empty() => Some(0.0),
                true => self.last_archived(&owed).await.map(|last| self.ms_after(last, back)),
                false => None,
            };
            let until =
                drained.map_or(Duration::MAX, |ms| played.back + Duration::from_secs_f64(ms / 1000.0));
            outage.backlog_peak = Some(backlog_peak(&lock(&self.samples), played.began, until));
            outage.drain_ms = drained;
        }
    }
}

/// Orders acknowledged and not archived at each sample: a sample the database did not answer
/// counts the rows it last showed.
fn backlogs(samples: &[Sample]) -> impl Iterator<Item = (Duration, u64)> + '_ {
    let mut archived = 0;
    samples.iter().map(move |sample| {
        archived = sample.archived.unwrap_or(archived);
        (sample.at, sample.acknowledged.saturating_sub(archived))
    })
}

fn backlog_peak(samples: &[Sample], from: Duration, to: Duration) -> u64 {
    backlogs(samples)
        .filter(|(at, _)| *at >= from && *at <= to)
        .map(|(_, backlog)| backlog)
        .max()
        .unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// 100 orders a second for 10 s; the database down from 3 s to 5 s (not answering, then
    /// catching up at 400 a second above the new orders).
    fn samples() -> Vec<Sample> {
        let mut samples = Vec::new();
        let mut archived = 0u64;
        for tenth in 0..=100u64 {
            let at = Duration::from_millis(tenth * 100);
            let acknowledged = tenth * 10;
            let down = at >= S(3) && at < S(5);
            if !down {
                let catching_up = if at >= S(5) { 50 } else { 10 };
                archived = (archived + catching_up).min(acknowledged);
            }
            samples.push(Sample { at, acknowledged, archived: (!down).then_some(archived) });
        }
        samples
    }

    #[test]
    fn the_backlog_counts_what_waits_and_a_sample_the_database_missed_keeps_the_last_count() {
        // 2 s of orders at 100 a second waited (the samples of the outage keep the count of 2.9 s).
        assert_eq!(backlog_peak(&samples(), Duration::ZERO, Duration::MAX), 200);
        assert_eq!(backlog_peak(&samples(), Duration::ZERO, S(2)), 0, "none before");
        let during: Vec<u64> = backlogs(&samples()).filter(|(at, _)| *at == S(4)).map(|(_, b)| b).collect();
        assert_eq!(during, [110]);
    }
}
