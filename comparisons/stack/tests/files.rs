//! The file service's limits hold on both stores: uploads bounded in number and bytes, idle ones
//! dropped with their place given back, a check whose checker died taken again after its lease,
//! finished outcomes and job reports kept for the retention only.
//!
//! The Redis store runs against a private redis-server.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use fileproc::FileError;
use fileproc::contracts::{BeginUpload, FileType, JobPhase, JobReport, UploadPhase};
use fileproc::domain::{CHECK_LEASE, CheckOutcome, Checked, FileLimits, FileStore, MemoryStore};
use stack::redis::{RedisFileStore, RedisPool};
use stack::testing::RedisServer;

fn declared(size_bytes: u64) -> BeginUpload {
    BeginUpload {
        file_name: "f.csv".into(),
        declared_type: FileType::Csv,
        size_bytes,
        sha256: "0".repeat(64),
    }
}

const LIMITS: FileLimits = FileLimits {
    max_file_bytes: 1_000,
    max_open_uploads: 2,
    max_open_bytes: 100,
    upload_idle: Duration::from_secs(300),
    retention: Duration::from_secs(30),
    max_jobs: 100,
    checks_at_once: 1,
};

async fn limits_hold<S: FileStore>(store: S) {
    let too_large = store.begin("upl_big", &declared(1_001), 0).await;
    assert!(matches!(too_large, Err(FileError::FileTooLarge { size: 1_001, max: 1_000 })), "{too_large:?}");
    store.begin("upl_a", &declared(2), 0).await.unwrap();
    assert!(matches!(store.begin("upl_b", &declared(99), 0).await, Err(FileError::StorageFull(2))));
    store.begin("upl_b", &declared(50), 0).await.unwrap();
    assert!(matches!(store.begin("upl_c", &declared(1), 0).await, Err(FileError::TooManyUploads(2))));

    // A chunk keeps `a` alive; `b` idles past its time and goes, with its place and its bytes.
    assert_eq!(store.append("upl_b", 0, b"half", 1_000).await.unwrap(), 4);
    assert_eq!(store.append("upl_a", 0, b"x", 299_000).await.unwrap(), 1);
    store.begin("upl_c", &declared(60), 302_000).await.unwrap();
    assert!(matches!(store.state("upl_b").await, Err(FileError::UploadNotFound(_))));

    // A check whose checker died: the upload is taken again once the lease has passed, with its
    // bytes still there.
    assert_eq!(store.append("upl_a", 1, b"y", 302_000).await.unwrap(), 2);
    assert!(matches!(store.take_for_checking("upl_a", 302_000).await.unwrap(), Checked::Take(..)));
    assert!(matches!(store.take_for_checking("upl_a", 303_000).await, Err(FileError::NotReceiving(_))));
    let after_lease = 302_001 + CHECK_LEASE.as_millis() as u64;
    match store.take_for_checking("upl_a", after_lease).await.unwrap() {
        Checked::Take(_, data) => assert_eq!(data.as_slice(), b"xy"),
        other => panic!("{other:?}"),
    }
    // Finishing gives the place back at once, and keeps the outcome.
    store.finish("upl_a", CheckOutcome::Failed("rows of the wrong width".into()), after_lease).await.unwrap();
    store.finish("upl_a", CheckOutcome::Failed("rows of the wrong width".into()), after_lease).await.unwrap();
    let state = store.state("upl_a").await.unwrap();
    assert_eq!(
        (state.phase, state.failure.as_deref()),
        (UploadPhase::Failed, Some("rows of the wrong width"))
    );
    store.begin("upl_d", &declared(40), after_lease).await.unwrap();
    assert!(matches!(
        store.begin("upl_e", &declared(1), after_lease).await,
        Err(FileError::TooManyUploads(2))
    ));
    let report = JobReport {
        job_id: "job-1".into(),
        phase: JobPhase::Completed,
        total: 1,
        succeeded: 1,
        errors: vec![],
    };
    assert_eq!(store.save_job(report.clone(), after_lease).await.unwrap(), report);
    assert_eq!(store.job("job-1").await.unwrap(), Some(report));
}

#[tokio::test]
async fn the_file_limits_hold_in_memory() {
    limits_hold(MemoryStore::new(LIMITS)).await;
}

#[tokio::test]
async fn the_file_limits_hold_in_redis() {
    let redis = RedisServer::start().unwrap();
    let pool = RedisPool::connect(&redis.url(), 1, "files").await.unwrap();
    limits_hold(RedisFileStore::new(pool.clone(), LIMITS)).await;
    // Redis keeps the outcome and the report for the retention, no longer.
    let mut connection = pool.connection();
    for key in ["files:upload:upl_a", "files:job:job-1"] {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut connection).await.unwrap();
        assert!(ttl > 0 && ttl <= 30_000, "{key}: {ttl} ms");
    }
}
