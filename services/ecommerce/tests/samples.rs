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
use natsrpc::testing::{Harness, golden_json, golden_schemas};

const SEED: u64 = 2026;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

#[tokio::test]
async fn samples_are_current_and_mean_what_they_say() {
    let samples = Payloads::new(SEED, 1000).samples();
    let dir = data_dir().join("test-payloads/ecommerce");
    let mut expectations = serde_json::Map::new();
    for sample in &samples {
        golden_json(&dir.join(format!("{}.valid.json", sample.endpoint)), &sample.valid).unwrap();
        golden_json(&dir.join(format!("{}.invalid.json", sample.endpoint)), &sample.invalid.request).unwrap();
        expectations.insert(
            sample.endpoint.to_string(),
            serde_json::json!({"path": sample.invalid.path, "code": sample.invalid.code}),
        );
    }
    golden_json(&dir.join("invalid-expectations.json"), &serde_json::Value::Object(expectations)).unwrap();

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
    use ecommerce::contracts::{CancelOrder, CreateOrder, GetOrder, ReserveInventory, Restock};
    let dir = data_dir().join("schemas/ecommerce");
    golden_schemas::<CreateOrder>(&dir).unwrap();
    golden_schemas::<GetOrder>(&dir).unwrap();
    golden_schemas::<CancelOrder>(&dir).unwrap();
    golden_schemas::<ReserveInventory>(&dir).unwrap();
    golden_schemas::<Restock>(&dir).unwrap();
}
