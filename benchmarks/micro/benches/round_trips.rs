//! What the second wave's features cost a call over a real (private) nats-server, each as a ratio
//! against the plain call in the same run:
//!
//! - `keyed`: a fresh `Idempotency-Key` per call, to an endpoint that keeps replies (a claim and
//!   the kept reply: two JetStream round trips beside the call);
//! - `replayed`: the same key each time (the claim refused, the kept reply read and sent again);
//! - `traced`: a caller's `traceparent` carried, no exporter;
//! - `exported`: the same, with every span exported over OTLP to a local collector.
//!
//! ```text
//! cargo bench -p micro-benchmarks --bench round_trips
//! ```

// criterion's macros make undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use natsrpc::testing::{NatsServer, OtlpCollector};
use natsrpc::trace::TraceContext;
use natsrpc::{CallOptions, Client, EndpointOptions, Service, ServiceError};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Serialize, Deserialize, Validate)]
struct Ping {
    #[validate(range(max = 1000))]
    n: u32,
}
natsrpc::request!(Ping => u32, service = "costs", endpoint = "ping");

async fn ping(req: Ping) -> Result<u32, ServiceError> {
    Ok(req.n)
}

fn round_trips(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let server = NatsServer::start().unwrap_or_else(|e| panic!("{e}"));
    let (client, _service) = runtime.block_on(async {
        let nats = natsrpc::connect(&server.url()).await.unwrap_or_else(|e| panic!("{e}"));
        let keeping = EndpointOptions::new().idempotent_replies(Duration::from_secs(600));
        let service = Service::builder("costs", "1.0.0")
            .endpoint_with(ping, keeping)
            .start(&nats)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (Client::new(nats), service)
    });
    let call = |options: &CallOptions| {
        runtime.block_on(client.call_with(black_box(&Ping { n: 7 }), options.clone())).unwrap_or(0)
    };
    let mut group = c.benchmark_group("round_trip");
    group.sample_size(30).measurement_time(Duration::from_secs(4));
    let plain = CallOptions::new();
    group.bench_function("plain", |b| b.iter(|| call(&plain)));
    group.bench_function("keyed", |b| b.iter(|| call(&CallOptions::new().idempotent())));
    let same_key = CallOptions::new().idempotency_key("the-same-key");
    group.bench_function("replayed", |b| b.iter(|| call(&same_key)));
    let traced = CallOptions::new().trace(TraceContext::new_root());
    group.bench_function("traced", |b| b.iter(|| call(&traced)));
    let collector = runtime.block_on(OtlpCollector::start()).unwrap_or_else(|e| panic!("{e}"));
    natsrpc::trace::export_to(&collector.url()).unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("exported", |b| b.iter(|| call(&traced)));
    group.finish();
    if let Some(stats) = natsrpc::trace::export_stats() {
        println!("exporter: {stats:?}");
    }
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
