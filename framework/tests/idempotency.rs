//! Idempotent replies over a real nats-server with JetStream, two instances of one service: a
//! request with an `Idempotency-Key` runs once however often, and wherever, it is sent; a retry
//! after a lost reply gets the first reply; retries racing the first attempt wait for it; the key
//! reused for another body, a key that cannot be a key, and a server error that must not be kept
//! are each answered as they should be.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use natsrpc::testing::NatsServer;
use natsrpc::{
    CallOptions, Client, EndpointOptions, RetryPolicy, Service, ServiceBuilder, ServiceError, State,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Serialize, Deserialize, Validate)]
struct Charge {
    #[validate(range(min = 1))]
    cents: u64,
    /// `ok`, `slow` (300 ms) or `fail` (a 500 the first time).
    how: String,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Charged {
    charge_id: u64,
    cents: u64,
}
natsrpc::request!(Charge => Charged, service = "payments", endpoint = "charge");

/// Charges made, across instances: what must not grow on a retry.
type Ledger = Arc<AtomicU64>;

async fn charge(State(ledger): State<Ledger>, req: Charge) -> Result<Charged, ServiceError> {
    if req.how == "slow" {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let charge_id = ledger.fetch_add(1, Ordering::SeqCst) + 1;
    if req.how == "fail" && charge_id % 2 == 1 {
        return Err(ServiceError::internal("the card network is away"));
    }
    Ok(Charged { charge_id, cents: req.cents })
}

#[derive(Debug, Serialize, Deserialize, Validate)]
struct Refund {
    cents: u64,
}
natsrpc::request!(Refund => Charged, service = "payments", endpoint = "refund");

/// Takes 400 ms against a 100 ms deadline: its caller is answered 504 while it runs on.
async fn refund(State(ledger): State<Ledger>, req: Refund) -> Result<Charged, ServiceError> {
    tokio::time::sleep(Duration::from_millis(400)).await;
    Ok(Charged { charge_id: ledger.fetch_add(1, Ordering::SeqCst) + 1, cents: req.cents })
}

fn payments(ledger: &Ledger) -> ServiceBuilder<Ledger> {
    let keeping = || EndpointOptions::new().idempotent_replies(Duration::from_secs(600));
    Service::builder("payments", "1.0.0")
        .state(Arc::clone(ledger))
        .endpoint_with(charge, keeping())
        .endpoint_with(refund, keeping().timeout(Duration::from_millis(100)))
}

/// Sends `body` with `key` until the answer is no longer "in progress" (the first attempt's
/// outcome kept): the reply.
async fn settled(
    nats: &natsrpc::async_nats::Client,
    subject: &str,
    key: &str,
    body: &[u8],
) -> natsrpc::async_nats::Message {
    for _ in 0..100 {
        let mut headers = natsrpc::async_nats::HeaderMap::new();
        headers.insert(natsrpc::headers::IDEMPOTENCY_KEY, key);
        let reply =
            nats.request_with_headers(subject.to_string(), headers, body.to_vec().into()).await.unwrap();
        if natsrpc::headers::reply_status(reply.headers.as_ref()) != 503 {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{subject} with key {key} stayed in progress");
}

fn charging(cents: u64, how: &str) -> Charge {
    Charge { cents, how: how.to_string() }
}

#[tokio::test]
async fn a_keyed_request_runs_once_wherever_and_however_often_it_is_sent() {
    let server = NatsServer::start().unwrap();
    let ledger = Ledger::default();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let one = payments(&ledger).start(&natsrpc::connect(&server.url()).await.unwrap()).await.unwrap();
    let two = payments(&ledger).start(&natsrpc::connect(&server.url()).await.unwrap()).await.unwrap();
    let client = Client::new(nats.clone());

    // The same key, ten times: one charge, ten identical answers, whichever instance answered.
    let keyed = CallOptions::new().idempotency_key("order-42-payment");
    let first = client.call_with(&charging(500, "ok"), keyed.clone()).await.unwrap();
    for _ in 0..9 {
        assert_eq!(client.call_with(&charging(500, "ok"), keyed.clone()).await.unwrap(), first);
    }
    assert_eq!(ledger.load(Ordering::SeqCst), 1);
    // Without a key, each call is a charge.
    client.call(&charging(500, "ok")).await.unwrap();
    assert_eq!(ledger.load(Ordering::SeqCst), 2);

    // The reply is lost (sent to an inbox nobody reads); the retry with the key gets it.
    let mut headers = natsrpc::async_nats::HeaderMap::new();
    headers.insert(natsrpc::headers::IDEMPOTENCY_KEY, "lost-reply-1");
    let body = serde_json::to_vec(&charging(700, "ok")).unwrap();
    nats.publish_with_reply_and_headers(
        "payments.charge",
        "nobody.listens",
        headers.clone(),
        body.clone().into(),
    )
    .await
    .unwrap();
    nats.flush().await.unwrap();
    // Once the first attempt has run (the retry could otherwise come first, and be the one),
    // the retry is told to wait while its reply is kept, then gets it.
    for _ in 0..200 {
        if ledger.load(Ordering::SeqCst) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let replayed = settled(&nats, "payments.charge", "lost-reply-1", &body).await;
    assert_eq!(
        replayed.headers.as_ref().and_then(|h| h.get(natsrpc::headers::REPLAYED)).map(|v| v.as_str()),
        Some("true")
    );
    let again: serde_json::Value = serde_json::from_slice(&replayed.payload).unwrap();
    assert_eq!(again["data"], serde_json::json!({"charge_id": 3, "cents": 700}));
    assert_eq!(ledger.load(Ordering::SeqCst), 3, "and the retry did not run it again");

    // Eight attempts at once while the first is still running: the others are told to retry
    // later (503, retryable), and with retries every one ends with the one charge's reply.
    let retrying =
        Client::new(nats.clone()).with_retry(RetryPolicy::exponential(12, Duration::from_millis(50)));
    let racing = CallOptions::new().idempotency_key("race-1");
    let attempts = (0..8).map(|_| {
        let (client, options) = (retrying.clone(), racing.clone());
        tokio::spawn(async move { client.call_with(&charging(900, "slow"), options).await })
    });
    let answers: Vec<Charged> =
        futures::future::join_all(attempts).await.into_iter().map(|a| a.unwrap().unwrap()).collect();
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(ledger.load(Ordering::SeqCst), 4);

    // The same request in another codec is the same request.
    let in_msgpack = keyed.clone().codec(natsrpc::Codec::MsgPack);
    assert_eq!(client.call_with(&charging(500, "ok"), in_msgpack).await.unwrap(), first);
    // The key reused for another request is refused.
    let reused = client.call_with(&charging(501, "ok"), keyed.clone()).await.unwrap_err();
    assert_eq!((reused.status(), reused.code()), (Some(422), Some("idempotency_key_reused")));
    // A server error is not kept: the retry runs the request again, and that answer is kept.
    let flaky = CallOptions::new().idempotency_key("flaky-1");
    assert_eq!(client.call_with(&charging(5, "fail"), flaky.clone()).await.unwrap_err().status(), Some(500));
    let kept = client.call_with(&charging(5, "fail"), flaky.clone()).await.unwrap();
    assert_eq!(client.call_with(&charging(5, "fail"), flaky).await.unwrap(), kept);
    assert_eq!(ledger.load(Ordering::SeqCst), 6);

    // A request refused by its rules claims nothing: the key is free for the request corrected.
    let corrected = CallOptions::new().idempotency_key("corrected-1");
    let unchecked = corrected.clone().unchecked();
    assert_eq!(client.call_with(&charging(0, "ok"), unchecked).await.unwrap_err().status(), Some(400));
    assert_eq!(client.call_with(&charging(3, "ok"), corrected).await.unwrap().cents, 3);
    assert_eq!(ledger.load(Ordering::SeqCst), 7);

    // A handler past its deadline: its caller is answered 504, retries are told to wait while it
    // runs on, and then get what it ended with, once.
    let late = CallOptions::new().idempotency_key("refund-1");
    assert_eq!(client.call_with(&Refund { cents: 40 }, late.clone()).await.unwrap_err().status(), Some(504));
    assert_eq!(client.call_with(&Refund { cents: 40 }, late.clone()).await.unwrap_err().status(), Some(503));
    let ended = settled(&nats, "payments.refund", "refund-1", br#"{"cents":40}"#).await;
    let ended: serde_json::Value = serde_json::from_slice(&ended.payload).unwrap();
    assert_eq!(ended["data"], serde_json::json!({"charge_id": 8, "cents": 40}));
    assert_eq!(ledger.load(Ordering::SeqCst), 8, "the refund ran once");

    // A key that cannot be one: the client refuses it unsent, the service as well.
    let spaced = CallOptions::new().idempotency_key("two words");
    assert_eq!(client.call_with(&charging(1, "ok"), spaced).await.unwrap_err().status(), Some(400));
    let mut headers = natsrpc::async_nats::HeaderMap::new();
    headers.insert(natsrpc::headers::IDEMPOTENCY_KEY, "x".repeat(65).as_str());
    let refused = nats
        .request_with_headers("payments.charge", headers, r#"{"cents":1,"how":"ok"}"#.into())
        .await
        .unwrap();
    assert_eq!(natsrpc::headers::reply_status(refused.headers.as_ref()), 400);
    assert_eq!(ledger.load(Ordering::SeqCst), 8);

    one.stop(Duration::from_secs(2)).await.unwrap();
    two.stop(Duration::from_secs(2)).await.unwrap();
}

/// A transport that carries no `Idempotency-Key` (as HTTP and AMQP here): the key is refused
/// rather than dropped while the call is retried as if it were safe.
struct Elsewhere;
impl natsrpc::Transport for Elsewhere {
    fn request<'a>(&'a self, _: &'a natsrpc::client::EncodedCall) -> natsrpc::client::PendingReply<'a> {
        Box::pin(async { Err(natsrpc::RpcError::transport("never sent")) })
    }
}

#[tokio::test]
async fn a_key_that_cannot_be_kept_is_refused_before_anything_is_sent() {
    let client = Client::over(Elsewhere);
    let keyed = CallOptions::new().idempotent();
    let error = client.call_with(&charging(1, "ok"), keyed).await.unwrap_err();
    assert!(matches!(error, natsrpc::RpcError::Config(_)), "{error:?}");
    // And a service that would have every instance claim each key is refused when built.
    let everywhere = EndpointOptions::new().idempotent_replies(Duration::from_secs(60)).no_queue_group();
    let builder =
        Service::builder("payments", "1.0.0").state(Ledger::default()).endpoint_with(charge, everywhere);
    let refused = natsrpc::Dispatcher::new(builder).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("no queue group"), "{refused}");
}
