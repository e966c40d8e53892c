//! A job's accepted records go on to analytics as `record_processed` events, in chunks of
//! `ingest_batch`, with at most a few chunks in flight so one large job cannot flood analytics.
//!
//! Event ids come from the job and the record, so a job that is run again (after a failed chunk)
//! counts nothing twice: analytics keeps each event id once.

use analytics_contracts::{Event, IngestBatch, IngestEvent, PropertyValue, now_ms};
use futures::TryStreamExt;
use natsrpc::{CallOptions, Client};

use super::sha256_hex;
use crate::contracts::Record;
use crate::error::FileError;

/// `ingest_batch` takes 5 to 500 events.
const MIN_BATCH: usize = 5;
const MAX_BATCH: usize = 500;

/// Where and how the records go.
#[derive(Debug, Clone)]
pub struct Forwarding {
    /// Reaches analytics, over the stack's transport.
    pub client: Client,
    /// Events per `ingest_batch` (5 to 500; default 100).
    pub chunk_size: usize,
    /// Chunks in flight at once (default 4).
    pub in_flight: usize,
}

impl Forwarding {
    /// Chunks of 100, 4 in flight.
    pub fn new(client: Client) -> Self {
        Self { client, chunk_size: 100, in_flight: 4 }
    }

    /// Sends `records` of job `job_id`: one `ingest_batch` per chunk, or one `ingest_event` per
    /// record when there are too few for a batch. The first failed call fails the whole (its part
    /// named); the job can then run again.
    pub(super) async fn send(
        &self,
        job_id: &str,
        records: &[&Record],
        calls: &CallOptions,
    ) -> Result<(), FileError> {
        let events: Vec<Event> = records.iter().map(|record| event(job_id, record)).collect();
        if events.len() < MIN_BATCH {
            return self
                .bounded(
                    events,
                    |event| {
                        let part = format!("analytics.ingest_event[{}]", event.event_id);
                        (part, IngestEvent { event })
                    },
                    calls,
                )
                .await;
        }
        // A job id is up to 64 characters of anything, a batch id up to 64 of printable text: the
        // batches are named after the job's digest, the same on every run of the job.
        let job = format!("job_{}", &sha256_hex(job_id.as_bytes())[..24]);
        let sizes = chunk_sizes(events.len(), self.chunk_size.clamp(MIN_BATCH, MAX_BATCH));
        let mut rest = events.into_iter();
        let chunks: Vec<(usize, Vec<Event>)> =
            sizes.iter().map(|size| rest.by_ref().take(*size).collect()).enumerate().collect();
        self.bounded(
            chunks,
            |(n, events)| {
                let batch_id = format!("{job}#{n}");
                (format!("analytics.ingest_batch[{batch_id}]"), IngestBatch { batch_id, events })
            },
            calls,
        )
        .await
    }

    /// Makes a request (and the name of its part) of each item and sends them, at most
    /// `in_flight` at once.
    async fn bounded<T, R: natsrpc::Request>(
        &self,
        items: Vec<T>,
        request: impl Fn(T) -> (String, R),
        calls: &CallOptions,
    ) -> Result<(), FileError> {
        futures::stream::iter(items.into_iter().map(|item| Ok(request(item))))
            .try_for_each_concurrent(self.in_flight.max(1), |(part, request)| async move {
                match self.client.call_with(&request, calls.clone()).await {
                    Ok(_) => Ok(()),
                    Err(error) => Err(FileError::Forward(error.part_failed(&part))),
                }
            })
            .await
    }
}

/// `total` split into chunks of about `size`, as even as can be: as few as chunks of at most
/// `size` need, unless that would make one smaller than a batch may be (`total` >= 5).
fn chunk_sizes(total: usize, size: usize) -> Vec<usize> {
    let chunks = total.div_ceil(size).min(total / MIN_BATCH).max(1);
    let (base, extra) = (total / chunks, total % chunks);
    (0..chunks).map(|i| base + usize::from(i < extra)).collect()
}

fn event(job_id: &str, record: &Record) -> Event {
    let digest = sha256_hex(format!("{job_id}\u{0}{}", record.record_id).as_bytes());
    Event {
        event_id: format!("evt_rec_{}", &digest[..40]),
        event_type: "record_processed".into(),
        timestamp_ms: now_ms(),
        user_id: "usr_fileproc".into(),
        session_id: format!("ses_{}", &digest[40..56]),
        value: Some(record.price_cents as f64 / 100.0),
        properties: [("sku".to_string(), PropertyValue::Text(record.sku.clone()))].into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_even_and_never_below_a_batch() {
        assert_eq!(chunk_sizes(5, 100), [5]);
        assert_eq!(chunk_sizes(100, 100), [100]);
        assert_eq!(chunk_sizes(101, 100), [51, 50]);
        assert_eq!(chunk_sizes(1000, 100), [100; 10]);
        assert_eq!(chunk_sizes(12, 5), [6, 6], "three chunks of 4 would be refused");
        assert_eq!(chunk_sizes(9, 5), [9]);
    }
}
