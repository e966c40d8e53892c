//! What a hostile or careless caller can send, over a real nats-server: control characters that
//! end up in error messages and headers, panics at every step of a request's way, odd deadlines,
//! replies too large once their headers count, handlers outliving their callers, a stop with the
//! server gone.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use natsrpc::{EndpointOptions, Service, ServiceBuilder, ServiceError, State};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use support::*;
use validator::Validate;

/// Ranks by one of two keys: an unknown key is a decode error that quotes the caller's text.
#[derive(Debug, Serialize, Deserialize, Validate)]
struct Rank {
    by: By,
    labels: Option<std::collections::BTreeMap<String, u32>>,
}
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum By {
    User,
    EventType,
}
natsrpc::request!(Rank => u32, service = "hostile", endpoint = "rank");

/// Panics at the step its `at` names: `decode`, `validate`, `handle` or `encode`.
#[derive(Debug, Serialize, Deserialize, Validate)]
struct Fragile {
    #[serde(deserialize_with = "panic_when_decode")]
    #[validate(custom(function = "panic_when_validate"))]
    at: String,
}
natsrpc::request!(Fragile => Brittle, service = "hostile", endpoint = "fragile");

#[derive(Debug, Deserialize)]
struct Brittle {
    at: String,
}

impl Serialize for Brittle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        assert_ne!(self.at, "encode", "panics while encoding");
        serializer.serialize_str(&self.at)
    }
}

fn panic_when_decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let at = String::deserialize(deserializer)?;
    assert_ne!(at, "decode", "panics while decoding");
    Ok(at)
}

fn panic_when_validate(at: &str) -> Result<(), validator::ValidationError> {
    assert_ne!(at, "validate", "panics while validating");
    Ok(())
}

/// Counts to one after `millis`: a change that must not be cut in half.
#[derive(Debug, Serialize, Deserialize, Validate)]
struct Tally {
    millis: u64,
}
natsrpc::request!(Tally => u64, service = "hostile", endpoint = "tally");

/// The same, on an endpoint that cancels its handler at the deadline.
#[derive(Debug, Serialize, Deserialize, Validate)]
struct TallyOrDrop {
    millis: u64,
}
natsrpc::request!(TallyOrDrop => u64, service = "hostile", endpoint = "tally_or_drop");

/// How many tallies finished.
#[derive(Debug, Serialize, Deserialize, Validate)]
struct Tallied {}
natsrpc::request!(Tallied => u64, service = "hostile", endpoint = "tallied", idempotent = true);

/// Fails with a message of `bytes` bytes.
#[derive(Debug, Serialize, Deserialize, Validate)]
struct Fail {
    bytes: usize,
}
natsrpc::request!(Fail => (), service = "hostile", endpoint = "fail");

async fn rank(req: Rank) -> Result<u32, ServiceError> {
    Ok(match req.by {
        By::User => 1,
        By::EventType => 2,
    })
}

async fn fragile(req: Fragile) -> Result<Brittle, ServiceError> {
    assert_ne!(req.at, "handle", "panics in the handler");
    Ok(Brittle { at: req.at })
}

async fn tally(State(count): State<Arc<AtomicU64>>, req: Tally) -> Result<u64, ServiceError> {
    tokio::time::sleep(Duration::from_millis(req.millis)).await;
    Ok(count.fetch_add(1, Ordering::SeqCst) + 1)
}

async fn tally_or_drop(State(count): State<Arc<AtomicU64>>, req: TallyOrDrop) -> Result<u64, ServiceError> {
    tokio::time::sleep(Duration::from_millis(req.millis)).await;
    Ok(count.fetch_add(1, Ordering::SeqCst) + 1)
}

async fn tallied(State(count): State<Arc<AtomicU64>>, _: Tallied) -> Result<u64, ServiceError> {
    Ok(count.load(Ordering::SeqCst))
}

async fn fail(req: Fail) -> Result<(), ServiceError> {
    Err(ServiceError::unprocessable("too_long", "x".repeat(req.bytes)))
}

fn hostile(count: Arc<AtomicU64>) -> ServiceBuilder<Arc<AtomicU64>> {
    Service::builder("hostile", "1.0.0")
        .state(count)
        .endpoint(rank)
        .endpoint(fragile)
        .endpoint_with(tally, EndpointOptions::new().max_in_flight(1))
        .endpoint_with(tally_or_drop, EndpointOptions::new().cancel_at_deadline())
        .endpoint(tallied)
        .endpoint(fail)
}

async fn start(nats: &async_nats::Client) -> (natsrpc::Service, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    (hostile(Arc::clone(&count)).start(nats).await.unwrap(), count)
}

/// Whether the service still answers both a request and the Services API.
async fn still_serving(nats: &async_nats::Client) {
    let reply = raw(nats, "hostile.rank", &[], r#"{"by":"user"}"#).await;
    assert_eq!(json(&reply)["data"], 1, "{:?}", json(&reply));
    let ping = nats.request("$SRV.PING.hostile", "".into()).await.unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&ping.payload).unwrap()["name"], "hostile");
}

fn assert_header_safe(message: &async_nats::Message) {
    for (name, values) in message.headers.iter().flat_map(|h| h.iter()) {
        for value in values {
            let value = value.as_str();
            assert!(value.len() <= 512, "{name}: {} bytes", value.len());
            assert!(value.bytes().all(|b| (b' '..=b'~').contains(&b)), "{name}: {value:?}");
        }
    }
}

#[tokio::test]
async fn control_characters_in_an_error_never_reach_a_header_raw_and_the_service_keeps_answering() {
    let (_server, nats) = private_nats().await;
    let (_service, _) = start(&nats).await;
    // serde's errors quote the caller's text: an unknown variant, a map key in the path.
    let bodies = [
        r#"{"by":"x\r\ny"}"#.to_string(),
        r#"{"by":"user","labels":{"k\r\nNats-Service-Error-Code: 200":"x"}}"#.to_string(),
        format!(r#"{{"by":"{}"}}"#, "\\u001b[31m".repeat(2_000)),
    ];
    for body in bodies {
        for content_type in [None, Some("application/json")] {
            let headers: Vec<(&str, &str)> = content_type.map(|c| ("Content-Type", c)).into_iter().collect();
            let reply = raw(&nats, "hostile.rank", &headers, body.clone()).await;
            assert_header_safe(&reply);
            assert_eq!(header(&reply, "Nats-Service-Error-Code"), Some("400"));
            assert_eq!(json(&reply)["error"]["kind"], "malformed_payload", "{body}");
        }
        still_serving(&nats).await;
    }
    // The same text as MessagePack.
    let body = rmp_serde::to_vec_named(&serde_json::json!({"by": "x\r\ny\u{0}"})).unwrap();
    let reply = raw(&nats, "hostile.rank", &[("Content-Type", "application/msgpack")], body).await;
    assert_header_safe(&reply);
    still_serving(&nats).await;
}

#[tokio::test]
async fn a_correlation_id_comes_back_escaped_and_bounded() {
    let (_server, nats) = private_nats().await;
    let (_service, _) = start(&nats).await;
    let long = "a".repeat(10_000);
    let cases = [("\u{1b}[31mred\u{0}", r"\u{1b}[31mred\u{0}"), ("é-1", r"\u{e9}-1")];
    for (sent, echoed) in cases {
        let reply = raw(&nats, "hostile.rank", &[("X-Correlation-Id", sent)], r#"{"by":"none"}"#).await;
        assert_eq!(header(&reply, "X-Correlation-Id"), Some(echoed));
    }
    let reply = raw(&nats, "hostile.rank", &[("X-Correlation-Id", &long)], r#"{"by":"none"}"#).await;
    let echoed = header(&reply, "X-Correlation-Id").unwrap();
    assert!(echoed.len() <= 128 && echoed.starts_with("aaaa"), "{echoed}");
}

#[tokio::test]
async fn a_panic_at_any_step_fails_that_request_only_with_a_500_envelope() {
    let (_server, nats) = private_nats().await;
    let (_service, _) = start(&nats).await;
    for at in ["decode", "validate", "handle", "encode"] {
        let body = format!(r#"{{"at":"{at}"}}"#);
        let reply = raw(&nats, "hostile.fragile", &[("X-Correlation-Id", at)], body).await;
        let error = &json(&reply)["error"];
        assert_eq!((error["status"].as_u64(), error["kind"].as_str()), (Some(500), Some("internal")), "{at}");
        assert!(error["message"].as_str().unwrap().contains(at), "the correlation id finds the log: {error}");
        assert!(!error["message"].as_str().unwrap().contains("panics"), "the panic's text stays in the log");
        still_serving(&nats).await;
    }
    let reply = raw(&nats, "hostile.fragile", &[], r#"{"at":"nowhere"}"#).await;
    assert_eq!(json(&reply)["data"], "nowhere");
}

#[tokio::test]
async fn odd_deadlines_are_ignored_and_a_zero_one_answers_504_at_once() {
    let (_server, nats) = private_nats().await;
    let (_service, _) = start(&nats).await;
    for deadline in ["-5", "abc", "99999999999999999999999", "", "1e3", "18446744073709551615"] {
        let reply = raw(&nats, "hostile.rank", &[("X-Deadline-Ms", deadline)], r#"{"by":"user"}"#).await;
        assert_eq!(json(&reply)["data"], 1, "X-Deadline-Ms {deadline:?}");
    }
    let reply = raw(&nats, "hostile.tally_or_drop", &[("X-Deadline-Ms", "0")], r#"{"millis":50}"#).await;
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), Some("504"));
}

#[tokio::test]
async fn a_handler_outlives_its_callers_deadline_and_keeps_its_in_flight_place() {
    let (_server, nats) = private_nats().await;
    let (_service, count) = start(&nats).await;
    let deadline = [("X-Deadline-Ms", "50")];
    let reply = raw(&nats, "hostile.tally", &deadline, r#"{"millis":600}"#).await;
    assert_eq!(
        header(&reply, "Nats-Service-Error-Code"),
        Some("504"),
        "the caller is answered at its deadline"
    );
    // The handler runs on, holding the endpoint's one place.
    let busy = raw(&nats, "hostile.tally", &[], r#"{"millis":1}"#).await;
    assert_eq!(header(&busy, "Nats-Service-Error-Code"), Some("503"));
    let client = natsrpc::Client::new(nats.clone());
    for _ in 0..200 {
        if client.call(&Tallied {}).await.unwrap() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(count.load(Ordering::SeqCst), 1, "the handler finished after its caller's 504");
    assert_eq!(client.call(&Tally { millis: 1 }).await.unwrap(), 2, "and gave its place back");

    // An endpoint that cancels at the deadline drops its handler there.
    let reply = raw(&nats, "hostile.tally_or_drop", &deadline, r#"{"millis":300}"#).await;
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), Some("504"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(count.load(Ordering::SeqCst), 2, "the dropped handler never finished");
}

#[tokio::test]
async fn a_reply_over_max_payload_once_its_headers_count_is_a_clear_500() {
    let (_server, nats) = private_nats().await;
    let (_service, _) = start(&nats).await;
    let max = nats.server_info().max_payload;
    // The envelope alone fits; with the error headers it does not.
    let bytes = max - 200;
    let envelope = natsrpc::envelope::encode_failure(
        natsrpc::Codec::Json,
        &ServiceError::unprocessable("too_long", "x".repeat(bytes)),
    );
    assert!(envelope.len() <= max, "{} of {max}", envelope.len());
    let reply = raw(&nats, "hostile.fail", &[], format!(r#"{{"bytes":{bytes}}}"#)).await;
    let error = &json(&reply)["error"];
    assert_eq!(error["status"], 500);
    assert!(error["message"].as_str().unwrap().contains("max_payload"), "{error}");
}

#[tokio::test]
async fn a_stop_ends_in_bounded_time_with_the_server_gone() {
    let (mut server, nats) = private_nats().await;
    let (service, _) = start(&nats).await;
    let client = natsrpc::Client::new(nats.clone());
    let slow = tokio::spawn(async move { client.call(&Tally { millis: 5_000 }).await });
    assert_eq!(wait_for_in_flight(&nats, "hostile", "tally", 1).await, 1);
    server.stop();
    let stopped =
        tokio::time::timeout(Duration::from_secs(30), service.stop(Duration::from_millis(300))).await;
    assert!(stopped.is_ok(), "Service::stop returned within its grace and flush bound");
    slow.abort();
}

#[tokio::test]
async fn a_transport_without_nats_can_wait_for_handlers_outliving_their_callers() {
    let count = Arc::new(AtomicU64::new(0));
    let dispatcher = natsrpc::Dispatcher::new(hostile(Arc::clone(&count))).unwrap();
    let head = natsrpc::RequestHead::new("hostile.tally").with_budget(Duration::from_millis(20));
    let reply = dispatcher.dispatch(head, r#"{"millis":300}"#.into()).await;
    assert_eq!(reply.status, 504);
    assert_eq!(dispatcher.finishing().wait(Duration::from_secs(10)).await, 0, "none left running");
    assert_eq!(count.load(Ordering::SeqCst), 1, "the handler ended what it began");
}
