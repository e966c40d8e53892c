//! Every endpoint through the natsrpc pipeline (in-process harness): figures on known data, every
//! validation rule with its exact path, partial batches, and counting each event once.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use analytics::contracts::{
    Dimension, Event, IngestBatch, IngestEvent, QueryAggregates, QueryTimeseries, RETENTION_MS, TopN, now_ms,
};
use analytics::domain::{Analytics, MemoryStore};
use analytics::payloads::{Payloads, Size};
use natsrpc::RpcError;
use natsrpc::testing::Harness;

fn app(retention_ms: u64) -> (Arc<Analytics<MemoryStore>>, Harness) {
    let app = Arc::new(Analytics::new(MemoryStore::new(retention_ms, 1), Arc::new(faults::Faults::none())));
    let harness = Harness::new(analytics::service(Arc::clone(&app))).unwrap();
    (app, harness)
}

/// `count` events of one type, one minute apart from `start`, with values 1, 2, 3...
fn events(payloads: &mut Payloads, event_type: &str, start_ms: u64, count: u64) -> Vec<Event> {
    (0..count)
        .map(|i| {
            let mut event = payloads.event(1);
            event.event_type = event_type.into();
            event.timestamp_ms = start_ms + (i % 3) * 60_000;
            event.user_id = format!("usr_{:04}", i % 4);
            event.value = Some((i + 1) as f64);
            event
        })
        .collect()
}

#[tokio::test]
async fn queries_answer_exact_figures() {
    let (_, api) = app(RETENTION_MS);
    let now = now_ms();
    let start = (now - 10 * 60_000) / 60_000 * 60_000;
    let mut payloads = Payloads::new(1, now);
    let mut batch =
        IngestBatch { batch_id: "b1".into(), events: events(&mut payloads, "checkout", start, 100) };
    batch.events.extend(events(&mut payloads, "search", start, 10));
    let ingested = api.call(&batch).await.unwrap();
    assert_eq!((ingested.accepted, ingested.duplicates, ingested.rejected.len()), (110, 0, 0));

    let window = payloads.window(15);
    let all = api.call(&QueryAggregates { event_type: None, window: window.clone() }).await.unwrap();
    let types: Vec<(&str, u64)> = all.types.iter().map(|t| (t.event_type.as_str(), t.count)).collect();
    assert_eq!(types, [("checkout", 100), ("search", 10)]);
    let checkout = &all.types[0];
    assert_eq!(checkout.sum, 5050.0);
    assert_eq!((checkout.p50, checkout.p90, checkout.p99), (Some(50.0), Some(90.0), Some(99.0)));

    let series =
        api.call(&QueryTimeseries { event_type: "checkout".into(), window: window.clone() }).await.unwrap();
    let busy: Vec<u64> = series.buckets.iter().filter(|b| b.count > 0).map(|b| b.count).collect();
    assert_eq!(busy, [34, 33, 33], "events spread over three minutes");
    assert!(
        series.buckets.windows(2).all(|w| w[1].minute_ms - w[0].minute_ms == 60_000),
        "every minute, in order"
    );

    let top = api.call(&TopN { by: Dimension::EventType, n: 1, window: window.clone() }).await.unwrap();
    assert_eq!((top.entries[0].key.as_str(), top.entries[0].count), ("checkout", 100));
    let users = api.call(&TopN { by: Dimension::User, n: 10, window }).await.unwrap();
    assert_eq!(users.entries.iter().map(|e| e.count).sum::<u64>(), 110);

    // A window longer than the retention is refused, naming its end.
    let too_long = analytics::contracts::Window { from_ms: now - 2 * RETENTION_MS, to_ms: now };
    let error = api.call(&QueryAggregates { event_type: None, window: too_long }).await.unwrap_err();
    let RpcError::Validation { violations, .. } = error else { panic!("{error:?}") };
    assert_eq!(
        (violations[0].path.as_str(), violations[0].code.as_str()),
        ("window.to_ms", "window_too_long")
    );
}

#[tokio::test]
async fn an_event_sent_twice_is_counted_once() {
    let (_, api) = app(RETENTION_MS);
    let mut payloads = Payloads::new(2, now_ms());
    let single = payloads.ingest_event();
    assert!(api.call(&single).await.unwrap().new);
    assert!(!api.call(&single).await.unwrap().new);
    let mut batch = payloads.ingest_batch(Size::Small);
    batch.events.push(single.event.clone());
    let ingested = api.call(&batch).await.unwrap();
    assert_eq!(ingested.duplicates, 1);
    let all = api.call(&payloads.query_aggregates()).await.unwrap();
    assert_eq!(all.types.iter().map(|t| t.count).sum::<u64>(), u64::from(ingested.accepted) + 1);
}

#[tokio::test]
async fn every_event_rule_is_reported_with_its_exact_path() {
    let (_, api) = app(RETENTION_MS);
    let mut payloads = Payloads::new(3, now_ms());
    let cases = payloads.invalid_events();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let error = api.call(&IngestEvent { event: case.request }).await.unwrap_err();
        let RpcError::Validation { violations, .. } = error else { panic!("{}: {error:?}", case.path) };
        let found: Vec<(&str, &str)> =
            violations.iter().map(|v| (v.path.as_str(), v.code.as_str())).collect();
        let expected = format!("event.{}", case.path);
        assert_eq!(found, [(expected.as_str(), case.code)]);
    }
}

#[tokio::test]
async fn a_batch_is_accepted_partially_and_says_what_it_refused() {
    let (_, api) = app(RETENTION_MS);
    let mut payloads = Payloads::new(4, now_ms());
    let mut batch = payloads.ingest_batch(Size::Medium);
    let invalid = payloads.invalid_events();
    let total = batch.events.len();
    for (slot, case) in [3usize, 7, 20].into_iter().zip(invalid.iter()) {
        batch.events[slot] = case.request.clone();
    }
    let ingested = api.call(&batch).await.unwrap();
    assert_eq!(ingested.accepted as usize, total - 3);
    let refused: Vec<(u32, &str, &str)> = ingested
        .rejected
        .iter()
        .map(|r| (r.index, r.violations[0].path.as_str(), r.violations[0].code.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            (3, "event_id", "event_id_format"),
            (7, "event_type", "event_type_format"),
            (20, "user_id", "user_id_format")
        ]
    );

    // The batch itself is still validated as a whole: 5 to 500 events.
    batch.events.truncate(4);
    assert_eq!(api.call(&batch).await.unwrap_err().code(), Some("validation_failed"));
}

#[tokio::test]
async fn memory_is_bounded_by_the_retention() {
    // A store that keeps two minutes, fed events spread over the last thirty.
    let (app, api) = app(2 * 60_000);
    let now = now_ms();
    let mut payloads = Payloads::new(5, now);
    for minutes_ago in (0..30).rev() {
        let mut batch = payloads.ingest_batch(Size::Small);
        for event in &mut batch.events {
            event.timestamp_ms = now - minutes_ago * 60_000;
        }
        api.call(&batch).await.unwrap();
    }
    let (minutes, ids) = app.store().held();
    assert!(minutes <= 3, "{minutes} minutes held");
    assert!(ids <= 3 * 10, "{ids} event ids held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_run_alongside_ingestion_and_see_every_event() {
    let (app, _) = app(RETENTION_MS);
    let now = now_ms();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let mut payloads = Payloads::new(100 + w, now);
                let mut accepted = 0u64;
                for _ in 0..20 {
                    accepted += u64::from(
                        app.ingest_batch(payloads.ingest_batch(Size::Small)).await.unwrap().accepted,
                    );
                }
                accepted
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let mut payloads = Payloads::new(200 + r, now);
                for _ in 0..50 {
                    app.query_aggregates(payloads.query_aggregates()).await.unwrap();
                    app.top_n(payloads.top_n()).await.unwrap();
                }
            })
        })
        .collect();
    let mut written = 0;
    for writer in writers {
        written += writer.await.unwrap();
    }
    for reader in readers {
        reader.await.unwrap();
    }
    let all = app.query_aggregates(Payloads::new(0, now_ms()).query_aggregates()).await.unwrap();
    assert_eq!(all.types.iter().map(|t| t.count).sum::<u64>(), written);
}

#[tokio::test]
async fn injected_faults_come_back_as_their_kinds() {
    let faults = faults::FaultSettings { internal_error_rate: 1.0, ..Default::default() };
    let app =
        Arc::new(Analytics::new(MemoryStore::new(RETENTION_MS, 1), Arc::new(faults::Faults::new(faults))));
    let api = Harness::new(analytics::service(app)).unwrap();
    let error = api.call(&Payloads::new(6, now_ms()).ingest_event()).await.unwrap_err();
    assert_eq!(error.status(), Some(500));
}
