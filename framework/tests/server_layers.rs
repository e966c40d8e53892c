//! A service's tower layers over a real nats-server: authentication from a header, a rate per
//! caller, an in-flight bound several endpoints share, a panicking layer, and where layers stand
//! (the service's outside the endpoint's, the later outside the earlier, all within the deadline
//! and panic isolation). Refusals are answered like any error, and counted in `$SRV.STATS`.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natsrpc::server::layers::{self, Call, InFlightLimitLayer, RateLimitLayer};
use natsrpc::testing::NatsServer;
use natsrpc::{CallOptions, Client, EndpointOptions, RequestContext, RpcError, Service, ServiceError, State};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate)]
struct Whoami {}
natsrpc::request!(Whoami => String, service = "desk", endpoint = "whoami");

#[derive(Clone, Serialize, Deserialize, Validate)]
struct Slow {
    /// Milliseconds the handler takes.
    wait: u64,
}
natsrpc::request!(Slow => u64, service = "desk", endpoint = "slow");

#[derive(Clone, Serialize, Deserialize, Validate)]
struct Slower {
    wait: u64,
}
natsrpc::request!(Slower => u64, service = "desk", endpoint = "slower");

/// Who sent a request, as the authentication layer found it.
#[derive(Debug, Clone)]
struct Caller(String);

fn authenticate(call: &mut Call) -> Result<(), ServiceError> {
    let caller = match call.ctx.header("Authorization") {
        Some("Bearer alice-token") => "alice",
        Some("Bearer bob-token") => "bob",
        _ => return Err(ServiceError::unauthorized("a valid bearer token is required")),
    };
    call.ctx.insert(Caller(caller.to_string()));
    Ok(())
}

async fn whoami(ctx: RequestContext, _: Whoami) -> Result<String, ServiceError> {
    let caller = ctx.extension::<Caller>().ok_or_else(|| ServiceError::internal("no caller"))?;
    Ok(caller.0.clone())
}

async fn slow(req: Slow) -> Result<u64, ServiceError> {
    tokio::time::sleep(Duration::from_millis(req.wait)).await;
    Ok(req.wait)
}

async fn slower(req: Slower) -> Result<u64, ServiceError> {
    tokio::time::sleep(Duration::from_millis(req.wait)).await;
    Ok(req.wait)
}

async fn private() -> (NatsServer, natsrpc::async_nats::Client) {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    (server, nats)
}

fn remote(result: Result<impl std::fmt::Debug, RpcError>) -> ServiceError {
    match result {
        Err(RpcError::Remote(error)) => error,
        other => panic!("expected a service error, got {other:?}"),
    }
}

fn bearer(token: &str) -> CallOptions {
    CallOptions::new().header("Authorization", format!("Bearer {token}"))
}

/// The endpoint's `$SRV.STATS` entry.
async fn stats(nats: &natsrpc::async_nats::Client, endpoint: &str) -> serde_json::Value {
    let reply = nats.request("$SRV.STATS.desk", "".into()).await.unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    stats["endpoints"].as_array().unwrap().iter().find(|e| e["name"] == endpoint).unwrap().clone()
}

#[tokio::test]
async fn an_authentication_layer_refuses_unknown_callers_and_tells_the_handler_who_called() {
    let (_server, nats) = private().await;
    let service = Service::builder("desk", "1.0.0")
        .endpoint(whoami)
        .layer(layers::check(authenticate))
        .start(&nats)
        .await
        .unwrap();
    let client = Client::new(nats.clone());

    assert_eq!(client.call_with(&Whoami {}, bearer("alice-token")).await.unwrap(), "alice");
    assert_eq!(client.call_with(&Whoami {}, bearer("bob-token")).await.unwrap(), "bob");

    let none = remote(client.call(&Whoami {}).await);
    assert_eq!((none.status, none.code.as_str()), (401, "unauthorized"));
    // A wrong token, with control characters in it: refused, and never echoed.
    // (Sent raw: the typed client refuses to send such a value.)
    let mut headers = natsrpc::async_nats::HeaderMap::new();
    headers.insert("Authorization", "Bearer mallory\u{7}\u{1b}[31m-token");
    let raw = nats.request_with_headers("desk.whoami", headers, "{}".into()).await.unwrap();
    let wrong: serde_json::Value = serde_json::from_slice(&raw.payload).unwrap();
    assert_eq!(wrong["error"]["status"], 401);
    assert!(!raw.payload.windows(7).any(|w| w == b"mallory"), "the reply does not echo the credentials");
    let echoed = raw
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .any(|(_, v)| v.iter().any(|v| v.as_str().contains("mallory")));
    assert!(!echoed, "nor do its headers");
    assert!(!natsrpc::ErrorKind::Unauthorized.is_retryable(), "asking again with the same token cannot help");

    // Refusals are counted as the endpoint's errors.
    let entry = stats(&nats, "whoami").await;
    assert_eq!(entry["num_requests"], 4);
    assert_eq!(entry["num_errors"], 2);
    // A header name that is no token, or natsrpc's own, or a value with a line break in it, is
    // refused before anything is sent.
    for (name, value) in
        [("Bad Name", "x"), ("x-deadline-ms", "1"), ("Nats-Anything", "x"), ("X-Ok", "a\r\nb")]
    {
        let broken = client.call_with(&Whoami {}, CallOptions::new().header(name, value)).await;
        assert!(matches!(broken, Err(RpcError::Config(_))), "{name}: {broken:?}");
    }
    assert_eq!(stats(&nats, "whoami").await["num_requests"], 4);
    service.stop(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_rate_limit_answers_429_to_a_caller_past_its_rate_and_leaves_the_others_alone() {
    let (_server, nats) = private().await;
    // Three at once, then one every 100 s: nothing refills while the test runs.
    let service = Service::builder("desk", "1.0.0")
        .endpoint(whoami)
        .layer(RateLimitLayer::per_caller(0.01, 3, |call: &Call| {
            call.ctx.extension::<Caller>().map(|caller| caller.0.clone())
        }))
        .layer(layers::check(authenticate))
        .start(&nats)
        .await
        .unwrap();
    let client = Client::new(nats.clone());
    for _ in 0..3 {
        assert_eq!(client.call_with(&Whoami {}, bearer("alice-token")).await.unwrap(), "alice");
    }
    let limited = remote(client.call_with(&Whoami {}, bearer("alice-token")).await);
    assert_eq!((limited.status, limited.code.as_str()), (429, "rate_limited"));
    assert!(limited.kind.is_retryable(), "a 429 says: later");
    assert!(limited.message.contains("retry in"), "{}", limited.message);
    // Bob has a bucket of his own.
    assert_eq!(client.call_with(&Whoami {}, bearer("bob-token")).await.unwrap(), "bob");
    // A caller refused by authentication, outside, never reaches the rate limit.
    assert_eq!(remote(client.call(&Whoami {}).await).status, 401);
    let entry = stats(&nats, "whoami").await;
    assert_eq!((entry["num_requests"].as_u64(), entry["num_errors"].as_u64()), (Some(6), Some(2)));
    service.stop(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn callers_past_the_remembered_bound_share_one_bucket() {
    let (_server, nats) = private().await;
    let service = Service::builder("desk", "1.0.0")
        .endpoint(slow)
        .layer(RateLimitLayer::per_header("X-Tenant", 0.01, 1).max_callers(2))
        .start(&nats)
        .await
        .unwrap();
    let client = Client::new(nats.clone());
    let as_tenant = |tenant: &str| CallOptions::new().header("X-Tenant", tenant);
    assert!(client.call_with(&Slow { wait: 0 }, as_tenant("a")).await.is_ok());
    assert!(client.call_with(&Slow { wait: 0 }, as_tenant("b")).await.is_ok());
    // a and b are remembered with empty buckets; c and d share the overflow bucket.
    assert!(client.call_with(&Slow { wait: 0 }, as_tenant("c")).await.is_ok());
    assert_eq!(remote(client.call_with(&Slow { wait: 0 }, as_tenant("d")).await).status, 429);
    // Callers that say nothing of themselves share it too.
    assert_eq!(remote(client.call(&Slow { wait: 0 }).await).status, 429);
    service.stop(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn an_in_flight_bound_added_to_the_service_is_shared_by_its_endpoints() {
    let (_server, nats) = private().await;
    let bound = InFlightLimitLayer::new(1);
    let service = Service::builder("desk", "1.0.0")
        .endpoint(slow)
        .endpoint(slower)
        .layer(bound.clone())
        .start(&nats)
        .await
        .unwrap();
    let client = Client::new(nats.clone());
    let running = {
        let client = client.clone();
        tokio::spawn(async move { client.call(&Slow { wait: 800 }).await })
    };
    for _ in 0..500 {
        if bound.in_flight() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(bound.in_flight(), 1, "the first request holds the service's one place");
    let refused = remote(client.call(&Slower { wait: 0 }).await);
    assert_eq!((refused.status, refused.code.as_str()), (503, "overloaded"));
    assert_eq!(running.await.unwrap().unwrap(), 800);
    assert_eq!(bound.in_flight(), 0, "the place is given back when the request ends");
    assert_eq!(client.call(&Slower { wait: 0 }).await.unwrap(), 0);
    assert_eq!(stats(&nats, "slower").await["num_errors"], 1);
    service.stop(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_panicking_layer_fails_its_request_only() {
    let (_server, nats) = private().await;
    let touchy = layers::check(|call: &mut Call| {
        if call.ctx.header("X-Boom").is_some() {
            panic!("a layer that cannot take a boom");
        }
        Ok(())
    });
    let service = Service::builder("desk", "1.0.0").endpoint(slow).layer(touchy).start(&nats).await.unwrap();
    let client = Client::new(nats.clone());
    let options = CallOptions::new().header("X-Boom", "1").correlation_id("boom-7");
    let failed = remote(client.call_with(&Slow { wait: 0 }, options).await);
    assert_eq!(failed.status, 500);
    assert!(failed.message.contains("boom-7"), "the correlation id finds the log line: {}", failed.message);
    assert!(!failed.message.contains("cannot take"), "the panic's text stays in the log");
    assert_eq!(client.call(&Slow { wait: 5 }).await.unwrap(), 5, "the service serves on");
    service.stop(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn layers_stand_service_outside_endpoint_later_outside_earlier_and_within_the_deadline() {
    let (_server, nats) = private().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let noting = |name: &'static str| {
        let seen = Arc::clone(&seen);
        layers::check(move |_: &mut Call| {
            seen.lock().unwrap().push(name);
            Ok(())
        })
    };
    // A layer of tower's own that waits before the request goes on.
    let dawdling = tower::util::MapFutureLayer::new(|inner| async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        inner.await
    });
    let endpoint = EndpointOptions::new().layer(noting("endpoint, first")).layer(noting("endpoint, second"));
    let service = Service::builder("desk", "1.0.0")
        .layer(noting("service, first"))
        .endpoint_with(slow, endpoint)
        .endpoint_with(slower, EndpointOptions::new().timeout(Duration::from_millis(200)).layer(dawdling))
        .layer(noting("service, second"))
        .start(&nats)
        .await
        .unwrap();
    let client = Client::new(nats.clone());
    assert_eq!(client.call(&Slow { wait: 0 }).await.unwrap(), 0);
    assert_eq!(
        *seen.lock().unwrap(),
        ["service, second", "service, first", "endpoint, second", "endpoint, first"]
    );
    // The deadline is outside every layer: time spent in one counts against it.
    let late = remote(client.call(&Slower { wait: 0 }).await);
    assert_eq!((late.status, late.code.as_str()), (504, "timeout"));
    service.stop(Duration::from_secs(2)).await.unwrap();
}

#[derive(Serialize, Deserialize, Validate)]
struct Pay {
    #[validate(range(min = 1))]
    cents: u64,
}
natsrpc::request!(Pay => u64, service = "desk", endpoint = "pay");

async fn pay(State(paid): State<Arc<AtomicU64>>, ctx: RequestContext, req: Pay) -> Result<u64, ServiceError> {
    ctx.extension::<Caller>().ok_or_else(|| ServiceError::internal("no caller"))?;
    Ok(paid.fetch_add(req.cents, Ordering::SeqCst) + req.cents)
}

#[tokio::test]
async fn a_keyed_request_claims_its_key_only_once_past_the_layers_and_a_replay_passes_them_too() {
    let (_server, nats) = private().await;
    let paid = Arc::new(AtomicU64::new(0));
    let keeping = EndpointOptions::new().idempotent_replies(Duration::from_secs(600));
    let service = Service::builder("desk", "1.0.0")
        .state(Arc::clone(&paid))
        .endpoint_with(pay, keeping)
        .layer(layers::check(authenticate))
        .start(&nats)
        .await
        .unwrap();
    let client = Client::new(nats.clone());
    let keyed = |token: Option<&str>| {
        let options = CallOptions::new().idempotency_key("pay-1");
        match token {
            Some(token) => options.header("Authorization", format!("Bearer {token}")),
            None => options,
        }
    };
    // Refused by authentication: nothing claimed, nothing kept.
    let refused = remote(client.call_with(&Pay { cents: 5 }, keyed(None)).await);
    assert_eq!(refused.status, 401);
    // So the same key, authenticated, runs the request (it is not answered a kept 401).
    assert_eq!(client.call_with(&Pay { cents: 5 }, keyed(Some("alice-token"))).await.unwrap(), 5);
    assert_eq!(client.call_with(&Pay { cents: 5 }, keyed(Some("alice-token"))).await.unwrap(), 5);
    assert_eq!(paid.load(Ordering::SeqCst), 5, "once");
    // The kept reply is not handed to a caller the layers refuse.
    let stranger = remote(client.call_with(&Pay { cents: 5 }, keyed(Some("wrong"))).await);
    assert_eq!(stranger.status, 401);
    // An invalid keyed request is refused by its rules after the layers, and claims nothing.
    let other_key = CallOptions::new().idempotency_key("pay-2").header("Authorization", "Bearer bob-token");
    let invalid = client.call_with(&Pay { cents: 0 }, other_key.clone().unchecked()).await;
    assert_eq!(invalid.unwrap_err().status(), Some(400));
    assert_eq!(client.call_with(&Pay { cents: 2 }, other_key).await.unwrap(), 7);
    service.stop(Duration::from_secs(1)).await.unwrap();
}
