//! The checked-in samples (`data/test-payloads/ecommerce/`) and schemas (`data/schemas/ecommerce/`)
//! are what the generator and the types produce, and mean what they say: every valid sample is
//! accepted and every invalid one refused with its named violation. `UPDATE_SAMPLES=1 cargo test`
//! rewrites them.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ecommerce::domain::{MemoryStore, Shop};
use ecommerce::payloads::Payloads;
use natsrpc::Request;
use natsrpc::testing::Harness;

const SEED: u64 = 2026;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// Compares `content` with the file, or writes it when `UPDATE_SAMPLES` is set.
fn check_file(path: &Path, content: &str) {
    if std::env::var_os("UPDATE_SAMPLES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!("{} is missing: run UPDATE_SAMPLES=1 cargo test -p ecommerce", path.display())
    });
    assert_eq!(on_disk, content, "{} is stale: run UPDATE_SAMPLES=1 cargo test -p ecommerce", path.display());
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

#[tokio::test]
async fn samples_are_current_and_mean_what_they_say() {
    let samples = Payloads::new(SEED, 1000).samples();
    let dir = data_dir().join("test-payloads/ecommerce");
    let mut expectations = serde_json::Map::new();
    for sample in &samples {
        check_file(&dir.join(format!("{}.valid.json", sample.endpoint)), &pretty(&sample.valid));
        check_file(&dir.join(format!("{}.invalid.json", sample.endpoint)), &pretty(&sample.invalid.request));
        expectations.insert(
            sample.endpoint.to_string(),
            serde_json::json!({"path": sample.invalid.path, "code": sample.invalid.code}),
        );
    }
    check_file(&dir.join("invalid-expectations.json"), &pretty(&serde_json::Value::Object(expectations)));

    // Sent as they are, the valid ones pass validation and the invalid ones fail as announced.
    let shop = Arc::new(Shop::new(MemoryStore::with_catalog(1000, 1000), Arc::new(faults::Faults::none())));
    let api = Harness::new(ecommerce::service(shop)).unwrap();
    for sample in &samples {
        let subject = format!("ecommerce.{}", sample.endpoint);
        let valid = api.call_raw(&subject, Some("application/json"), sample.valid.to_string()).await;
        let kind = valid.error.map(|e| e.kind);
        assert!(
            kind != Some(natsrpc::ErrorKind::Validation),
            "{}: the valid sample is refused",
            sample.endpoint
        );
        let invalid =
            api.call_raw(&subject, Some("application/json"), sample.invalid.request.to_string()).await;
        let error =
            invalid.error.unwrap_or_else(|| panic!("{}: the invalid sample is accepted", sample.endpoint));
        let found: Vec<(&str, &str)> =
            error.violations.iter().map(|v| (v.path.as_str(), v.code.as_str())).collect();
        assert!(
            found.contains(&(sample.invalid.path.as_str(), sample.invalid.code)),
            "{}: {found:?}",
            sample.endpoint
        );
    }
}

#[test]
fn schemas_are_current() {
    let dir = data_dir().join("schemas/ecommerce");
    let endpoints = [
        (ecommerce::contracts::CreateOrder::ENDPOINT, ecommerce::contracts::CreateOrder::endpoint_metadata()),
        (ecommerce::contracts::GetOrder::ENDPOINT, ecommerce::contracts::GetOrder::endpoint_metadata()),
        (ecommerce::contracts::CancelOrder::ENDPOINT, ecommerce::contracts::CancelOrder::endpoint_metadata()),
        (
            ecommerce::contracts::ReserveInventory::ENDPOINT,
            ecommerce::contracts::ReserveInventory::endpoint_metadata(),
        ),
        (ecommerce::contracts::Restock::ENDPOINT, ecommerce::contracts::Restock::endpoint_metadata()),
    ];
    for (endpoint, metadata) in endpoints {
        for (key, schema) in metadata {
            let which = key.trim_end_matches("_schema");
            let value: serde_json::Value = serde_json::from_str(&schema).unwrap();
            check_file(&dir.join(format!("{endpoint}.{which}.json")), &pretty(&value));
        }
    }
}
