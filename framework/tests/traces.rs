//! W3C trace context over a real nats-server: a call's trace carries through the calls and events
//! a handler makes within its request, every request's span reaches an OTLP collector with the
//! right parent, a `traceparent` that does not read starts a trace of its own, and a collector
//! that goes away costs the requests nothing.
//!
//! The exporter is the process's own, so this file is one test, in steps.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use natsrpc::events::Publisher;
use natsrpc::testing::{NatsServer, OtlpCollector};
use natsrpc::trace::TraceContext;
use natsrpc::{CallOptions, Client, RequestContext, Service, ServiceError, State};
use serde::{Deserialize, Serialize};
use validator::Validate;

/// What a handler saw of its trace: its own span and its caller's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    trace_id: String,
    span_id: String,
    caller_span_id: Option<String>,
}

fn seen(ctx: &RequestContext) -> Seen {
    Seen {
        trace_id: ctx.trace().trace_id(),
        span_id: ctx.trace().span_id(),
        caller_span_id: ctx.caller_trace().map(|c| c.span_id()),
    }
}

#[derive(Serialize, Deserialize, Validate)]
struct Hop {
    id: String,
}
natsrpc::request!(Hop => (Seen, Seen), service = "relay", endpoint = "hop");

#[derive(Serialize, Deserialize, Validate)]
struct Leaf {}
natsrpc::request!(Leaf => Seen, service = "relay", endpoint = "leaf");

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Hopped {
    id: String,
}
natsrpc::event!(Hopped, subject = "events.relay.hopped", id = id);

struct Relay {
    client: Client,
    events: Publisher,
    heard: Mutex<Vec<Seen>>,
}

/// Seen by `hop`, and by `leaf` as `hop` called it: the pair goes back to the caller.
async fn hop(
    State(relay): State<Arc<Relay>>,
    ctx: RequestContext,
    req: Hop,
) -> Result<(Seen, Seen), ServiceError> {
    let leaf = relay
        .client
        .call_with(&Leaf {}, CallOptions::new().within(&ctx))
        .await
        .map_err(|e| ServiceError::internal(e.to_string()))?;
    relay
        .events
        .publish_within(&ctx, &Hopped { id: req.id })
        .await
        .map_err(|e| ServiceError::internal(e.to_string()))?;
    Ok((seen(&ctx), leaf))
}

async fn leaf(ctx: RequestContext, _: Leaf) -> Result<Seen, ServiceError> {
    Ok(seen(&ctx))
}

async fn on_hopped(
    State(relay): State<Arc<Relay>>,
    ctx: RequestContext,
    _: Hopped,
) -> Result<(), ServiceError> {
    relay.heard.lock().unwrap().push(seen(&ctx));
    Ok(())
}

#[tokio::test]
async fn a_trace_runs_through_calls_and_events_and_its_spans_reach_the_collector() {
    let collector = OtlpCollector::start().await.unwrap();
    natsrpc::trace::export_to(&collector.url()).unwrap();
    assert!(natsrpc::trace::export_to(&collector.url()).is_err(), "one exporter per process");
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let relay = Arc::new(Relay {
        client: Client::new(nats.clone()),
        events: Publisher::new(nats.clone()),
        heard: Mutex::new(Vec::new()),
    });
    let service = Service::builder("relay", "1.0.0")
        .state(Arc::clone(&relay))
        .endpoint(hop)
        .endpoint(leaf)
        .listener(on_hopped)
        .start(&nats)
        .await
        .unwrap();
    let client = Client::new(nats.clone());

    // The caller's span is the root; hop is its child, leaf and the listener are hop's.
    let root = TraceContext::new_root();
    let (at_hop, at_leaf) =
        client.call_with(&Hop { id: "h1".into() }, CallOptions::new().trace(root)).await.unwrap();
    assert_eq!(at_hop.trace_id, root.trace_id());
    assert_eq!(at_hop.caller_span_id, Some(root.span_id()));
    assert_eq!(at_leaf.trace_id, root.trace_id());
    assert_eq!(at_leaf.caller_span_id, Some(at_hop.span_id.clone()));
    let mut heard = Vec::new();
    for _ in 0..100 {
        heard = relay.heard.lock().unwrap().clone();
        if !heard.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(heard.len(), 1, "the listener heard the event");
    assert_eq!(
        (&heard[0].trace_id, &heard[0].caller_span_id),
        (&root.trace_id(), &Some(at_hop.span_id.clone()))
    );

    let spans = collector.wait_for(2, Duration::from_secs(10)).await;
    let span =
        |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} in {spans:?}"));
    let (hop_span, leaf_span) = (span("relay.hop"), span("relay.leaf"));
    assert_eq!((&hop_span.service, hop_span.status), (&"relay".to_string(), 200));
    assert_eq!(hop_span.trace_id, root.trace_id());
    assert_eq!(hop_span.span_id, at_hop.span_id);
    assert_eq!(hop_span.parent_span_id, Some(root.span_id()));
    assert_eq!(leaf_span.parent_span_id, Some(hop_span.span_id.clone()));

    // A traceparent that does not read (wrong case, control characters, far too long) starts
    // a trace of its own; the request is answered as any other.
    let hostile = [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01".to_string(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{7}".to_string(),
        "x".repeat(10_000),
    ];
    for value in hostile {
        let mut headers = natsrpc::async_nats::HeaderMap::new();
        headers.insert(natsrpc::headers::TRACEPARENT, value.as_str());
        let reply = nats.request_with_headers("relay.leaf", headers, "{}".into()).await.unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(answer["ok"], true, "{answer}");
        let trace_id = answer["data"]["trace_id"].as_str().unwrap();
        assert_eq!(trace_id.len(), 32);
        assert!(!value.to_lowercase().contains(trace_id), "a trace of its own for {value:.60}");
        assert_eq!(answer["data"]["caller_span_id"], serde_json::Value::Null);
    }

    // The collector goes away: requests are answered as before, and the exporter says what it
    // could not deliver.
    collector.stop();
    let before = natsrpc::trace::export_stats().unwrap();
    for _ in 0..20 {
        client.call(&Leaf {}).await.unwrap();
    }
    let mut after = before;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = natsrpc::trace::export_stats().unwrap();
        // The 20 spans may straddle two batches: until both have failed.
        if after.failed_batches > before.failed_batches && after.dropped >= before.dropped + 20 {
            break;
        }
    }
    assert!(after.failed_batches > before.failed_batches, "{before:?} then {after:?}");
    assert!(after.dropped >= before.dropped + 20, "{before:?} then {after:?}");
    service.stop(Duration::from_secs(2)).await.unwrap();
}
