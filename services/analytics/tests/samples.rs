//! The checked-in samples (`data/test-payloads/analytics/`) and schemas (`data/schemas/analytics/`)
//! are what the generator and the types produce, and mean what they say once their timestamps are
//! refreshed. `UPDATE_SAMPLES=1 cargo test` rewrites them.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use analytics::contracts::{
    IngestBatch, IngestEvent, QueryAggregates, QueryTimeseries, RETENTION_MS, TopN, UserActivity, now_ms,
};
use analytics::domain::{Analytics, MemoryStore};
use analytics::payloads::{Payloads, SAMPLE_NOW_MS, refresh_timestamps};
use natsrpc::testing::{Harness, compatible_with, golden_samples, golden_schemas};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

#[tokio::test]
async fn samples_are_current_and_mean_what_they_say() {
    let samples = Payloads::new(2026, SAMPLE_NOW_MS).samples();
    golden_samples(&data_dir().join("test-payloads/analytics"), &samples).unwrap();
    let app = Arc::new(Analytics::new(MemoryStore::new(RETENTION_MS, 1), Arc::new(faults::Faults::none())));
    let api = Harness::new(analytics::service(app)).unwrap();
    api.check_samples(&samples, |request| refresh_timestamps(request, now_ms())).await.unwrap();
}

#[test]
fn schemas_are_current() {
    let dir = data_dir().join("schemas/analytics");
    golden_schemas::<IngestEvent>(&dir).unwrap();
    golden_schemas::<IngestBatch>(&dir).unwrap();
    golden_schemas::<QueryAggregates>(&dir).unwrap();
    golden_schemas::<QueryTimeseries>(&dir).unwrap();
    golden_schemas::<TopN>(&dir).unwrap();
    golden_schemas::<UserActivity>(&dir).unwrap();
}

/// The contract of the last release (`data/contracts/analytics.json`, its `$SRV.INFO`) still holds:
/// nothing its callers sent is refused now, nothing they read is gone, unless the major version
/// says so. `UPDATE_SAMPLES=1 cargo test` records the contract as it is now, for a release.
#[test]
fn the_released_contract_holds() {
    compatible_with(
        &data_dir().join("contracts/analytics.json"),
        analytics::service(Arc::new(Analytics::new(
            MemoryStore::new(RETENTION_MS, 1),
            Arc::new(faults::Faults::none()),
        ))),
    )
    .unwrap();
}
