//! Keeping a service's contract: its `$SRV.INFO` at the last release, checked in, against the
//! service as built now ([`crate::compat`]).

use std::path::Path;

use crate::compat::{Break, check};
use crate::server::{Dispatcher, ServiceBuilder};

/// Whether `service` keeps the contract recorded at `released` (its `$SRV.INFO` at the last
/// release, as JSON): a change that breaks the old version's callers fails, unless the service's
/// major version is new; the breaks a new major version allows are answered. With
/// `UPDATE_SAMPLES` set, the service as built now is recorded there instead (for a release),
/// unless it breaks the recorded one without saying so.
///
/// ```no_run
/// # fn service() -> natsrpc::ServiceBuilder<()> { natsrpc::Service::builder("shop", "1.0.0") }
/// natsrpc::testing::compatible_with(std::path::Path::new("contracts/shop.info.json"), service()).unwrap();
/// ```
pub fn compatible_with<S: Send + Sync + 'static>(
    released: &Path,
    service: ServiceBuilder<S>,
) -> Result<Vec<Break>, String> {
    let dispatcher = Dispatcher::new(service).map_err(|e| e.to_string())?;
    let mut now: serde_json::Value = serde_json::from_slice(&dispatcher.info()).map_err(|e| e.to_string())?;
    // An instance's id is new every start: not part of the contract.
    if let Some(info) = now.as_object_mut() {
        info.remove("id");
    }
    let recorded = std::fs::read_to_string(released)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string()));
    let updating = std::env::var_os("UPDATE_SAMPLES").is_some();
    let breaks = match (&recorded, updating) {
        (Ok(recorded), _) => check(recorded, &now).map_err(|incompatible| incompatible.to_string())?,
        (Err(_), true) => Vec::new(),
        (Err(why), false) => {
            return Err(format!(
                "{}: {why}: rerun the tests with UPDATE_SAMPLES=1 to record the contract",
                released.display()
            ));
        }
    };
    if updating {
        super::golden_json(released, &now)?;
    }
    Ok(breaks)
}
