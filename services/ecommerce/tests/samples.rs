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
use natsrpc::testing::{Harness, compatible_with, golden_samples, golden_schemas};

const SEED: u64 = 2026;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

#[tokio::test]
async fn samples_are_current_and_mean_what_they_say() {
    let samples = Payloads::new(SEED, 1000).samples();
    golden_samples(&data_dir().join("test-payloads/ecommerce"), &samples).unwrap();
    let shop = Arc::new(Shop::new(MemoryStore::with_catalog(1000, 1000), Arc::new(faults::Faults::none())));
    let api = Harness::new(ecommerce::service(shop)).unwrap();
    api.check_samples(&samples, |_| {}).await.unwrap();
}

#[test]
fn schemas_are_current() {
    use ecommerce::contracts::{
        CancelOrder, CreateOrder, GetOrder, GetOrderOverview, GetStock, ReserveInventory, Restock,
    };
    let dir = data_dir().join("schemas/ecommerce");
    golden_schemas::<CreateOrder>(&dir).unwrap();
    golden_schemas::<GetOrder>(&dir).unwrap();
    golden_schemas::<CancelOrder>(&dir).unwrap();
    golden_schemas::<ReserveInventory>(&dir).unwrap();
    golden_schemas::<Restock>(&dir).unwrap();
    golden_schemas::<GetStock>(&dir).unwrap();
    golden_schemas::<GetOrderOverview>(&dir).unwrap();
}

/// The contract of the last release (`data/contracts/ecommerce.json`, its `$SRV.INFO`) still holds:
/// nothing its callers sent is refused now, nothing they read is gone, unless the major version
/// says so. `UPDATE_SAMPLES=1 cargo test` records the contract as it is now, for a release.
#[test]
fn the_released_contract_holds() {
    compatible_with(
        &data_dir().join("contracts/ecommerce.json"),
        ecommerce::service(Arc::new(Shop::new(
            MemoryStore::with_catalog(1000, 1000),
            Arc::new(faults::Faults::none()),
        ))),
    )
    .unwrap();
}
