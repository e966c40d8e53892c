//! What the second wave's features cost a call over a real (private) nats-server, measured as
//! MEASURING.md asks on a noisy 2-core machine: the variants take turns, round after round, and
//! each is reported as the median of its per-round ratio to the plain call, with their range.
//! (Measured one after another, as criterion does, a variant's place in the run moved its figure
//! by as much as the feature costs.)
//!
//! ```text
//! cargo bench -p micro-benchmarks --bench feature_costs [-- ROUNDS CALLS]
//! ```

use std::time::{Duration, Instant};

use natsrpc::client::layers::{BulkheadLayer, CircuitBreakerLayer};
use natsrpc::testing::NatsServer;
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

/// One way of calling, and its name.
struct Variant {
    name: &'static str,
    client: Client,
    options: fn() -> CallOptions,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3000);
    let server = NatsServer::start().unwrap_or_else(|e| panic!("{e}"));
    let nats = natsrpc::connect(&server.url()).await.unwrap_or_else(|e| panic!("{e}"));
    let keeping = EndpointOptions::new().idempotent_replies(Duration::from_secs(600));
    let _service = Service::builder("costs", "1.0.0")
        .endpoint_with(ping, keeping)
        .start(&nats)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = Client::new(nats);
    let layered = client.clone().layer(BulkheadLayer::new(64, 256)).layer(CircuitBreakerLayer::new(
        5,
        Duration::from_secs(10),
        Duration::from_secs(5),
    ));
    let variant = |name, client: &Client, options| Variant { name, client: client.clone(), options };
    let variants = [
        variant("plain", &client, CallOptions::new),
        variant("layered (bulkhead + breaker)", &layered, CallOptions::new),
        variant("one more header (55 bytes)", &client, || CallOptions::new().correlation_id("c".repeat(55))),
        variant("traced (traceparent)", &client, || CallOptions::new().trace(TraceContext::new_root())),
        variant("keyed (fresh Idempotency-Key)", &client, || CallOptions::new().idempotent()),
        variant("replayed (the same key again)", &client, || {
            CallOptions::new().idempotency_key("the-same-key")
        }),
    ];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut per_call = vec![Vec::new(); variants.len()];
    for round in 0..=rounds {
        let mut took = Vec::with_capacity(variants.len());
        for v in &variants {
            let started = Instant::now();
            for n in 0..calls {
                let _ = v.client.call_with(&Ping { n: (n % 1000) as u32 }, (v.options)()).await;
            }
            took.push(started.elapsed());
        }
        if round == 0 {
            continue; // warm-up
        }
        for (i, t) in took.iter().enumerate() {
            ratios[i].push(t.as_secs_f64() / took[0].as_secs_f64());
            per_call[i].push(t.as_secs_f64() * 1e6 / calls as f64);
        }
    }
    println!(
        "{rounds} rounds of {calls} calls each, in turn; median (range) of the per-round ratio to plain"
    );
    for (i, v) in variants.iter().enumerate() {
        let (ratio, low, high) = median_range(&mut ratios[i]);
        let (micros, _, _) = median_range(&mut per_call[i]);
        println!("{:<32} {micros:>7.1} us/call  {ratio:.2}x ({low:.2}x to {high:.2}x)", v.name);
    }
}

fn median_range(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let median = values.get(values.len() / 2).copied().unwrap_or(0.0);
    (median, values.first().copied().unwrap_or(0.0), values.last().copied().unwrap_or(0.0))
}
