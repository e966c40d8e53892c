//! The checked-in samples (`data/test-payloads/analytics/`) and schemas (`data/schemas/analytics/`)
//! are what the generator and the types produce, and mean what they say once their timestamps are
//! refreshed. `UPDATE_SAMPLES=1 cargo test` rewrites them.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use analytics::contracts::{
    IngestBatch, IngestEvent, QueryAggregates, QueryTimeseries, RETENTION_MS, TopN, now_ms,
};
use analytics::domain::{Analytics, MemoryStore};
use analytics::payloads::{Payloads, SAMPLE_NOW_MS, refresh_timestamps};
use natsrpc::testing::{Harness, golden_json, golden_schemas};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

#[tokio::test]
async fn samples_are_current_and_mean_what_they_say() {
    let samples = Payloads::new(2026, SAMPLE_NOW_MS).samples();
    let dir = data_dir().join("test-payloads/analytics");
    let mut expectations = serde_json::Map::new();
    for (endpoint, valid, invalid) in &samples {
        golden_json(&dir.join(format!("{endpoint}.valid.json")), valid).unwrap();
        golden_json(&dir.join(format!("{endpoint}.invalid.json")), &invalid.request).unwrap();
        expectations
            .insert(endpoint.to_string(), serde_json::json!({"path": invalid.path, "code": invalid.code}));
    }
    golden_json(&dir.join("invalid-expectations.json"), &serde_json::Value::Object(expectations)).unwrap();

    let app = Arc::new(Analytics::new(MemoryStore::new(RETENTION_MS, 1), Arc::new(faults::Faults::none())));
    let api = Harness::new(analytics::service(app)).unwrap();
    for (endpoint, valid, invalid) in samples {
        let subject = format!("analytics.{endpoint}");
        let (mut valid, mut invalid_request) = (valid, invalid.request);
        refresh_timestamps(&mut valid, now_ms());
        refresh_timestamps(&mut invalid_request, now_ms());
        let reply = api.call_raw(&subject, Some("application/json"), valid.to_string()).await;
        assert!(reply.error.is_none(), "{endpoint}: the valid sample is refused: {:?}", reply.error);
        let reply = api.call_raw(&subject, Some("application/json"), invalid_request.to_string()).await;
        let error = reply.error.unwrap_or_else(|| panic!("{endpoint}: the invalid sample is accepted"));
        let found: Vec<(&str, &str)> =
            error.violations.iter().map(|v| (v.path.as_str(), v.code.as_str())).collect();
        assert!(found.contains(&(invalid.path.as_str(), invalid.code)), "{endpoint}: {found:?}");
    }
}

#[test]
fn schemas_are_current() {
    let dir = data_dir().join("schemas/analytics");
    golden_schemas::<IngestEvent>(&dir).unwrap();
    golden_schemas::<IngestBatch>(&dir).unwrap();
    golden_schemas::<QueryAggregates>(&dir).unwrap();
    golden_schemas::<QueryTimeseries>(&dir).unwrap();
    golden_schemas::<TopN>(&dir).unwrap();
}
