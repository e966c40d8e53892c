//! The client's tower layers over a real nats-server: a circuit breaker opens after repeated
//! failures and stops sending (the service sees no more calls), probes once the time is up, and
//! closes when the probe is answered; a bulkhead lets a bounded number of calls run and wait and
//! refuses the rest at once; a layer of one's own composes with them.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use natsrpc::client::layers::{BulkheadLayer, CircuitBreakerLayer, FallbackLayer};
use natsrpc::testing::NatsServer;
use natsrpc::{Client, RpcError, Service, ServiceError, State};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate)]
struct Quote {
    /// Milliseconds the service takes.
    wait: u64,
}
natsrpc::request!(Quote => u32, service = "quotes", endpoint = "quote");

/// Whether the service is healthy, and how many calls reached it.
#[derive(Default)]
struct Health {
    down: AtomicBool,
    reached: AtomicUsize,
}

async fn quote(State(health): State<Arc<Health>>, req: Quote) -> Result<u32, ServiceError> {
    health.reached.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(req.wait)).await;
    if health.down.load(Ordering::SeqCst) {
        return Err(ServiceError::unavailable("the pricing feed is away"));
    }
    Ok(42)
}

async fn quotes(nats: &natsrpc::async_nats::Client, health: &Arc<Health>) -> Service {
    Service::builder("quotes", "1.0.0").state(Arc::clone(health)).endpoint(quote).start(nats).await.unwrap()
}

fn rejected(error: &RpcError) -> bool {
    matches!(error, RpcError::Rejected { .. })
}

#[tokio::test]
async fn a_breaker_stops_calling_a_failing_endpoint_and_probes_it_back() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let health = Arc::new(Health::default());
    health.down.store(true, Ordering::SeqCst);
    let service = quotes(&nats, &health).await;
    let client = Client::new(nats.clone()).layer(CircuitBreakerLayer::new(
        3,
        Duration::from_secs(10),
        Duration::from_millis(400),
    ));

    for _ in 0..3 {
        assert_eq!(client.call(&Quote { wait: 0 }).await.unwrap_err().status(), Some(503));
    }
    // Open: refused at once, and nothing reaches the service.
    for _ in 0..5 {
        let error = client.call(&Quote { wait: 0 }).await.unwrap_err();
        assert!(rejected(&error), "{error:?}");
        assert!(error.to_string().contains("circuit is open"), "{error}");
    }
    assert_eq!(health.reached.load(Ordering::SeqCst), 3);

    // Time up, still down: the probe fails, and the circuit opens again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(client.call(&Quote { wait: 0 }).await.unwrap_err().status(), Some(503));
    assert!(rejected(&client.call(&Quote { wait: 0 }).await.unwrap_err()));
    assert_eq!(health.reached.load(Ordering::SeqCst), 4);

    // Back: the probe succeeds and the circuit closes.
    health.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(450)).await;
    for _ in 0..5 {
        assert_eq!(client.call(&Quote { wait: 0 }).await.unwrap(), 42);
    }
    assert_eq!(health.reached.load(Ordering::SeqCst), 9);

    // A stopped service (no responders) counts too.
    service.stop(Duration::from_secs(1)).await.unwrap();
    for _ in 0..3 {
        assert!(matches!(client.call(&Quote { wait: 0 }).await.unwrap_err(), RpcError::NoResponders { .. }));
    }
    assert!(rejected(&client.call(&Quote { wait: 0 }).await.unwrap_err()));
}

/// Counts the calls that go through it: a layer of one's own.
#[derive(Clone)]
struct Counting<S> {
    inner: S,
    calls: Arc<AtomicUsize>,
}

impl<S> tower::Service<natsrpc::client::EncodedCall> for Counting<S>
where
    S: tower::Service<natsrpc::client::EncodedCall>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: natsrpc::client::EncodedCall) -> S::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.call(call)
    }
}

#[tokio::test]
async fn a_bulkhead_runs_and_queues_a_bounded_number_and_refuses_the_rest_at_once() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let health = Arc::new(Health::default());
    let service = quotes(&nats, &health).await;
    let counted = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&counted);
    let counting = tower::layer::layer_fn(move |inner| Counting { inner, calls: Arc::clone(&calls) });
    let client = Client::new(nats.clone()).layer(counting).layer(BulkheadLayer::new(2, 1));

    let started = std::time::Instant::now();
    let calls = (0..10).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.call(&Quote { wait: 300 }).await })
    });
    let answers: Vec<Result<u32, RpcError>> =
        futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    let answered = answers.iter().filter(|a| a.is_ok()).count();
    let refused = answers.iter().filter(|a| a.as_ref().is_err_and(rejected)).count();
    assert_eq!((answered, refused), (3, 7), "{answers:?}");
    // The third waited for a place: two rounds of 300 ms.
    assert!(started.elapsed() >= Duration::from_millis(600), "{:?}", started.elapsed());
    assert_eq!(health.reached.load(Ordering::SeqCst), 3);
    assert_eq!(counted.load(Ordering::SeqCst), 3, "the bulkhead is outside the counting layer");
    service.stop(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_breaker_fed_by_the_services_figures_opens_before_its_own_client_has_failed() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let health = Arc::new(Health::default());
    health.down.store(true, Ordering::SeqCst);
    let service = quotes(&nats, &health).await;
    let fed = CircuitBreakerLayer::new(3, Duration::from_secs(10), Duration::from_millis(300)).fed_by_stats(
        nats.clone(),
        "quotes",
        Duration::from_millis(50),
        0.5,
    );
    let client = Client::new(nats.clone()).layer(fed);
    // Other callers, without a breaker, see it fail.
    let others = Client::new(nats.clone());
    for _ in 0..5 {
        assert_eq!(others.call(&Quote { wait: 0 }).await.unwrap_err().status(), Some(503));
    }
    let reached = health.reached.load(Ordering::SeqCst);
    // A look at $SRV.STATS every 50 ms: after a few, the circuit is open, and this client's first
    // call is refused (its own count, 3 failures, would take three calls that reach the service).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = None;
    for _ in 0..100 {
        match client.call(&Quote { wait: 0 }).await {
            Err(error) if rejected(&error) => {
                refused = Some(error);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let refused = refused.expect("the circuit opens from the service's figures");
    assert!(refused.to_string().contains("figures"), "{refused}");
    let reached_by_client = health.reached.load(Ordering::SeqCst) - reached;
    assert!(reached_by_client <= 2, "at most the calls made before the look reached it: {reached_by_client}");

    // Healthy again: once the figures show no failures, calls go through.
    health.down.store(false, Ordering::SeqCst);
    let mut answered = false;
    for _ in 0..100 {
        if client.call(&Quote { wait: 0 }).await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "the circuit closes when the figures say the endpoint is well");
    service.stop(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_fallback_answers_failed_calls_with_the_callers_value_and_lets_refusals_through() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let health = Arc::new(Health::default());
    let service = quotes(&nats, &health).await;
    let client = Client::new(nats.clone())
        .layer(CircuitBreakerLayer::new(2, Duration::from_secs(10), Duration::from_secs(10)))
        .layer(FallbackLayer::new::<Quote>(|error| {
            (error.is_retryable() || matches!(error, RpcError::Rejected { .. })).then_some(7)
        }));
    assert_eq!(client.call(&Quote { wait: 0 }).await.unwrap(), 42, "a call that succeeds is untouched");
    health.down.store(true, Ordering::SeqCst);
    // The service's 503s, then the open circuit's refusals: the fallback's value every time.
    for _ in 0..4 {
        assert_eq!(client.call(&Quote { wait: 0 }).await.unwrap(), 7);
    }
    assert_eq!(health.reached.load(Ordering::SeqCst), 3, "the breaker, inside, stopped the calls");
    // A 504 from a call that takes longer than the client waits: retryable, so the fallback too.
    let mut impatient = Client::new(nats.clone()).with_timeout(Duration::from_millis(100));
    impatient = impatient.layer(FallbackLayer::new::<Quote>(|error| error.is_retryable().then_some(8)));
    health.down.store(false, Ordering::SeqCst);
    assert_eq!(impatient.call(&Quote { wait: 500 }).await.unwrap(), 8);
    service.stop(Duration::from_secs(2)).await.unwrap();

    // A refusal of the request itself is the caller's to see: no responders is retryable, but a
    // fallback that offers nothing for it lets it through.
    let strict = Client::new(nats.clone()).layer(FallbackLayer::new::<Quote>(|_| None));
    assert!(matches!(strict.call(&Quote { wait: 0 }).await, Err(RpcError::NoResponders { .. })));
}
