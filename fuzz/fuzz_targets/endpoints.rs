//! Every endpoint of the three services, through the real pipeline, with requests read from the
//! fuzzer's bytes (see `stack::testing::fuzz`): any reply that is not an envelope of its status,
//! that carries a header that is not header-safe, or that is a 500 (a panic) is a crash.
#![no_main]

use std::sync::OnceLock;

use stack::testing::fuzz::{Plan, Services, Targets};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    services: Services,
    targets: Targets,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
        let services = runtime.block_on(Services::start()).expect("the services");
        Fixture { runtime, services, targets: Targets::new() }
    })
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let fixture = fixture();
    let plan = Plan::from_bytes(&fixture.targets, bytes);
    if let Err(failure) = fixture.runtime.block_on(fixture.services.drive(&plan)) {
        panic!("{failure}");
    }
});
