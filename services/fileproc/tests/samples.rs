//! The checked-in samples (`data/test-payloads/fileproc/`) and schemas (`data/schemas/fileproc/`)
//! are what the generator and the types produce. `UPDATE_SAMPLES=1 cargo test` rewrites them.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fileproc::contracts::{BeginUpload, CompleteUpload, JobStatus, ProcessBatch, UploadChunk, UploadStatus};
use fileproc::domain::{FileProcessor, MemoryStore};
use fileproc::payloads::Payloads;
use natsrpc::testing::{Harness, compatible_with, golden_samples, golden_schemas};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

#[tokio::test]
async fn samples_are_current_and_mean_what_they_say() {
    let samples = Payloads::new(2026).samples();
    golden_samples(&data_dir().join("test-payloads/fileproc"), &samples).unwrap();
    let app = Arc::new(FileProcessor::new(MemoryStore::default(), Arc::new(faults::Faults::none())));
    let api = Harness::new(fileproc::service(app)).unwrap();
    api.check_samples(&samples, |_| {}).await.unwrap();
}

#[test]
fn schemas_are_current() {
    let dir = data_dir().join("schemas/fileproc");
    golden_schemas::<BeginUpload>(&dir).unwrap();
    golden_schemas::<UploadChunk>(&dir).unwrap();
    golden_schemas::<CompleteUpload>(&dir).unwrap();
    golden_schemas::<UploadStatus>(&dir).unwrap();
    golden_schemas::<ProcessBatch>(&dir).unwrap();
    golden_schemas::<JobStatus>(&dir).unwrap();
}

/// The contract of the last release (`data/contracts/fileproc.json`, its `$SRV.INFO`) still holds:
/// nothing its callers sent is refused now, nothing they read is gone, unless the major version
/// says so. `UPDATE_SAMPLES=1 cargo test` records the contract as it is now, for a release.
#[test]
fn the_released_contract_holds() {
    compatible_with(
        &data_dir().join("contracts/fileproc.json"),
        fileproc::service(Arc::new(FileProcessor::new(
            MemoryStore::default(),
            Arc::new(faults::Faults::none()),
        ))),
    )
    .unwrap();
}
