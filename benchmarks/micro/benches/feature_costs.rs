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

use natsrpc::client::layers::{BulkheadLayer, CircuitBreakerLayer, FallbackLayer};
use natsrpc::server::layers::{self, Call, InFlightLimitLayer, RateLimitLayer};
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

/// The same, on an endpoint behind server layers.
#[derive(Serialize, Deserialize, Validate)]
struct Guarded {
    #[validate(range(max = 1000))]
    n: u32,
}
natsrpc::request!(Guarded => u32, service = "costs", endpoint = "guarded");

async fn guarded(req: Guarded) -> Result<u32, ServiceError> {
    Ok(req.n)
}

/// Who called, as the authentication layer found it.
struct Caller;

/// Three server layers: authentication from a header, a rate per caller (too high to refuse),
/// and an in-flight bound besides the endpoint's own.
fn guarding() -> EndpointOptions {
    let authenticate = layers::check(|call: &mut Call| match call.ctx.header("Authorization") {
        Some("Bearer bench") => {
            call.ctx.insert(Caller);
            Ok(())
        }
        _ => Err(ServiceError::unauthorized("who are you?")),
    });
    EndpointOptions::new()
        .layer(InFlightLimitLayer::new(4096))
        .layer(RateLimitLayer::per_header("Authorization", 1e9, u32::MAX))
        .layer(authenticate)
}

fn authorized() -> CallOptions {
    CallOptions::new().header("Authorization", "Bearer bench")
}

/// One way of calling, and its name.
struct Variant {
    name: &'static str,
    client: Client,
    options: fn() -> CallOptions,
    /// Calls the endpoint behind server layers.
    guarded: bool,
    /// The variant its per-round ratio is to: the plain call, or the one it adds a step to.
    versus: usize,
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
        .endpoint_with(guarded, guarding())
        .start(&nats)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = Client::new(nats.clone());
    let layered = client.clone().layer(BulkheadLayer::new(64, 256)).layer(CircuitBreakerLayer::new(
        5,
        Duration::from_secs(10),
        Duration::from_secs(5),
    ));
    // A breaker that also reads the service's $SRV.STATS (once a second), and a fallback that is
    // asked only when a call fails (none does here): what they cost a call that succeeds.
    let fed = CircuitBreakerLayer::new(5, Duration::from_secs(10), Duration::from_secs(5)).fed_by_stats(
        nats.clone(),
        "costs",
        Duration::from_secs(1),
        0.5,
    );
    let guarded_client = client.clone().layer(fed).layer(FallbackLayer::new::<Ping>(|_| Some(0)));
    let variant = |name, client: &Client, options| Variant {
        name,
        client: client.clone(),
        options,
        guarded: false,
        versus: 0,
    };
    let variants = [
        variant("plain", &client, CallOptions::new),
        variant("layered (bulkhead + breaker)", &layered, CallOptions::new),
        variant("breaker fed by stats + fallback", &guarded_client, CallOptions::new),
        variant("one more header (55 bytes)", &client, || CallOptions::new().correlation_id("c".repeat(55))),
        variant("traced (traceparent)", &client, || CallOptions::new().trace(TraceContext::new_root())),
        variant("keyed (fresh Idempotency-Key)", &client, || CallOptions::new().idempotent()),
        variant("replayed (the same key again)", &client, || {
            CallOptions::new().idempotency_key("the-same-key")
        }),
        variant("with an Authorization header", &client, authorized),
        Variant {
            guarded: true,
            versus: 7,
            ..variant("the same, 3 server layers (vs the above)", &client, authorized)
        },
    ];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut per_call = vec![Vec::new(); variants.len()];
    for round in 0..=rounds {
        let mut took = Vec::with_capacity(variants.len());
        for v in &variants {
            let started = Instant::now();
            for n in 0..calls {
                let n = (n % 1000) as u32;
                let _ = match v.guarded {
                    true => v.client.call_with(&Guarded { n }, (v.options)()).await,
                    false => v.client.call_with(&Ping { n }, (v.options)()).await,
                };
            }
            took.push(started.elapsed());
        }
        if round == 0 {
            continue; // warm-up
        }
        for (i, t) in took.iter().enumerate() {
            ratios[i].push(t.as_secs_f64() / took[variants[i].versus].as_secs_f64());
            per_call[i].push(t.as_secs_f64() * 1e6 / calls as f64);
        }
    }
    println!(
        "{rounds} rounds of {calls} calls each, in turn; median (range) of the per-round ratio to plain (or as named)"
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
