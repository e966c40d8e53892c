//! Property tests: arbitrary bytes, read as requests made to break the services
//! (`stack::testing::fuzz`), through the real pipeline of every endpoint; and the cargo-fuzz
//! targets' corpora (`fuzz/corpus/`) replayed. Every reply is an envelope of its status, with
//! header-safe headers, and never a 500. The long runs are `fuzz/` (see its README); these are
//! their short versions.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use stack::testing::fuzz::{Plan, Services, Targets};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap())
}

fn services() -> &'static (Services, Targets) {
    static SERVICES: OnceLock<(Services, Targets)> = OnceLock::new();
    SERVICES.get_or_init(|| (runtime().block_on(Services::start()).unwrap(), Targets::new()))
}

fn drive(bytes: &[u8]) -> Result<(), String> {
    let (services, targets) = services();
    let plan = Plan::from_bytes(targets, bytes);
    runtime().block_on(services.drive(&plan))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_samples_and_arbitrary_bodies_are_answered_with_envelopes(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        drive(&bytes).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn every_endpoint_gets_every_mutation_once() {
    let (_, targets) = services();
    for endpoint in 0..targets.len() as u8 {
        for what in 0..4u8 {
            for with in 0..16u8 {
                for flags in [0u8, 1] {
                    // Replace the root, then a node deep inside, with each hostile value.
                    drive(&[endpoint, flags, 1, what, 0, with, what, 7, with]).unwrap();
                }
            }
        }
    }
}

#[test]
fn the_fuzz_corpora_replay_clean() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut replayed = 0;
    for target in std::fs::read_dir(&root).unwrap() {
        for input in std::fs::read_dir(target.unwrap().path()).unwrap() {
            let bytes = std::fs::read(input.unwrap().path()).unwrap();
            drive(&bytes).unwrap();
            replayed += 1;
        }
    }
    assert!(replayed > 0, "the corpora in {} are checked in", root.display());
}
