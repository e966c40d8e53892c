//! Deadlines carry through a chain of calls: a handler that calls another service with
//! `CallOptions::within(&ctx)` passes on its correlation id and only the time it has left, and a
//! service gives up at the caller's deadline when it is sooner than its own.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natsrpc::testing::NatsServer;
use natsrpc::{CallOptions, Client, EndpointOptions, RequestContext, Service, ServiceError, State};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Slow {
    millis: u64,
}
natsrpc::request!(Slow => String, service = "backend", endpoint = "slow");

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Front {}
natsrpc::request!(Front => String, service = "frontend", endpoint = "front");

/// What the backend saw of its caller: the correlation id and the deadline header.
type Seen = Arc<Mutex<Vec<(String, Option<u64>)>>>;

async fn slow(State(seen): State<Seen>, ctx: RequestContext, req: Slow) -> Result<String, ServiceError> {
    let budget = ctx.header(natsrpc::headers::DEADLINE).and_then(|v| v.parse().ok());
    seen.lock().unwrap().push((ctx.correlation_id().to_string(), budget));
    tokio::time::sleep(Duration::from_millis(req.millis)).await;
    Ok("done".into())
}

async fn front(State(client): State<Client>, ctx: RequestContext, _: Front) -> Result<String, ServiceError> {
    let reply = client.call_with(&Slow { millis: 10_000 }, CallOptions::new().within(&ctx)).await;
    reply.map_err(|error| ServiceError::business(504, "backend_late", error.to_string()))
}

#[tokio::test]
async fn a_deadline_and_a_correlation_id_carry_through_a_chain_of_calls() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let seen: Seen = Arc::default();
    // The backend's own deadline is long; the frontend's is 400 ms.
    let _backend = Service::builder("backend", "1.0.0")
        .state(Arc::clone(&seen))
        .endpoint(slow)
        .start(&nats)
        .await
        .unwrap();
    let client = Client::new(nats.clone()).with_timeout(Duration::from_secs(30));
    let _frontend = Service::builder("frontend", "1.0.0")
        .state(client.clone())
        .endpoint_with(front, EndpointOptions::new().timeout(Duration::from_millis(400)))
        .start(&nats)
        .await
        .unwrap();

    let started = Instant::now();
    let answer = client.call_with(&Front {}, CallOptions::new().correlation_id("order-42")).await;
    let elapsed = started.elapsed();
    let error = answer.unwrap_err();
    assert!(
        elapsed < Duration::from_secs(3),
        "given up at the frontend's deadline, not the backend's: {elapsed:?}"
    );
    assert!(matches!(error, natsrpc::RpcError::Remote(ref e) if e.status == 504), "{error}");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (correlation_id, budget) = &seen[0];
    assert_eq!(correlation_id, "order-42", "the caller's correlation id reached the backend");
    let budget = budget.expect("the backend was told the deadline");
    assert!(budget <= 400, "only what the frontend had left: {budget} ms");
}

#[tokio::test]
async fn a_service_gives_up_at_the_callers_deadline_when_it_is_sooner() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let _backend = Service::builder("backend", "1.0.0")
        .state(Seen::default())
        .endpoint(slow)
        .start(&nats)
        .await
        .unwrap();

    let mut headers = natsrpc::async_nats::HeaderMap::new();
    headers.insert(natsrpc::headers::DEADLINE, "150");
    let started = Instant::now();
    let reply =
        nats.request_with_headers("backend.slow", headers, r#"{"millis": 5000}"#.into()).await.unwrap();
    let elapsed = started.elapsed();
    let code = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(natsrpc::headers::SERVICE_ERROR_CODE))
        .map(|v| v.to_string());
    assert_eq!(code.as_deref(), Some("504"));
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}
