//! Graceful drain, reconnects after a server restart, and retries.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use natsrpc::{CallOptions, Client, RetryPolicy, RpcError};
use support::*;

#[tokio::test]
async fn stop_drains_requests_in_flight_and_then_takes_no_more() {
    let (_server, nats) = private_nats().await;
    let service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(nats.clone());

    let in_flight = concurrently(&client, 5, Sleep { millis: 400 });
    assert_eq!(wait_for_in_flight(&nats, "shop", "sleep", 5).await, 5);
    let report = service.stop(Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.abandoned, 0);
    for call in in_flight {
        assert_eq!(call.await.unwrap().unwrap(), Slept { millis: 400 }, "answered during the drain");
    }
    let after = client.call(&Sleep { millis: 1 }).await.unwrap_err();
    assert!(matches!(after, RpcError::NoResponders { .. }), "{after:?}");
}

#[tokio::test]
async fn a_stop_past_its_grace_reports_what_it_abandoned() {
    let (_server, nats) = private_nats().await;
    let service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(nats.clone());
    let slow = tokio::spawn(async move { client.call(&Sleep { millis: 3_000 }).await });
    assert_eq!(wait_for_in_flight(&nats, "shop", "sleep", 1).await, 1);
    let report = service.stop(Duration::from_millis(200)).await.unwrap();
    assert_eq!(report.abandoned, 1);
    slow.abort();
}

#[tokio::test]
async fn services_and_clients_come_back_after_the_server_restarts() {
    let (mut server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(natsrpc::connect(&server.url()).await.unwrap());
    assert!(client.call(&valid_order()).await.is_ok());

    server.restart().unwrap();

    // Both connections reconnect and the service re-subscribes; retry until it has.
    let retry = RetryPolicy::exponential(40, Duration::from_millis(100));
    let options = CallOptions::new().timeout(Duration::from_millis(500)).retry(retry);
    let placed = client.call_with(&valid_order(), options).await.unwrap();
    assert_eq!(placed.item_count, 2);
}

#[tokio::test]
async fn idempotent_calls_retry_until_a_late_service_answers() {
    let (server, nats) = private_nats().await;
    let client =
        Client::new(nats.clone()).with_retry(RetryPolicy::exponential(30, Duration::from_millis(50)));

    // Not idempotent: one attempt, no retry.
    assert!(matches!(client.call(&valid_order()).await, Err(RpcError::NoResponders { .. })));

    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        shop("late").start(&nats).await.unwrap()
    });
    // `Sleep` is declared idempotent, so the client-wide policy applies.
    assert_eq!(client.call(&Sleep { millis: 1 }).await.unwrap(), Slept { millis: 1 });
    drop(late.await.unwrap());
    drop(server);
}

#[tokio::test]
async fn the_harness_runs_the_same_path_without_nats() {
    let harness = natsrpc::testing::Harness::new(shop("local")).unwrap();
    assert_eq!(harness.call(&valid_order()).await.unwrap().instance, "local");
    let mut order = valid_order();
    order.items[0].quantity = 101;
    let error = harness.call(&order).await.unwrap_err();
    let RpcError::Validation { violations, .. } = error else { panic!("{error:?}") };
    assert_eq!(violations[0].path, "items[0].quantity");

    let reply = harness.call_raw("shop.place_order", Some("application/json"), "{").await;
    assert_eq!(reply.error.map(|e| e.code), Some("malformed_payload".to_string()));
    let reply = harness.call_raw("shop.nope", None, "{}").await;
    assert_eq!(reply.error.map(|e| e.status), Some(404));
    let msgpack = harness.with_codec(natsrpc::Codec::MsgPack);
    assert_eq!(msgpack.call(&Sleep { millis: 1 }).await.unwrap(), Slept { millis: 1 });
}

#[tokio::test]
async fn misconfigured_services_are_refused_before_they_start() {
    let wrong_version = natsrpc::Service::builder("shop", "one")
        .endpoint(|_: Missing| async { Ok::<(), natsrpc::ServiceError>(()) });
    assert!(matches!(natsrpc::testing::Harness::new(wrong_version), Err(RpcError::Config(_))));
    let wrong_service = natsrpc::Service::builder("billing", "1.0.0")
        .endpoint(|_: Missing| async { Ok::<(), natsrpc::ServiceError>(()) });
    let error = natsrpc::testing::Harness::new(wrong_service).err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("configuration: endpoint `missing` belongs to service `shop`, not `billing`")
    );
    let twice = natsrpc::Service::builder("shop", "1.0.0")
        .endpoint(|_: Missing| async { Ok::<(), natsrpc::ServiceError>(()) })
        .endpoint(|_: Missing| async { Ok::<(), natsrpc::ServiceError>(()) });
    assert!(matches!(natsrpc::testing::Harness::new(twice), Err(RpcError::Config(_))));
}

#[tokio::test]
async fn the_echo_example_drains_and_exits_0_on_sigterm() {
    let (server, nats) = private_nats().await;
    // cargo builds examples next to the test binaries' folder: target/<profile>/examples/echo.
    let exe = std::env::current_exe().unwrap();
    let echo = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples").join("echo");
    assert!(echo.is_file(), "{} is built by `cargo test`", echo.display());
    let service =
        natsrpc::testing::ServiceProcess::spawn(echo.to_str().unwrap(), &server.url(), &[]).unwrap();
    service.wait_for_info(&nats, "echo").await.unwrap();

    let fields = serde_json::json!({"hello": "world", "n": [1, 2, 3]});
    let reply = nats.request("echo.echo", fields.to_string().into()).await.unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply, serde_json::json!({"ok": true, "data": fields}));

    let status = service.terminate().await.unwrap();
    assert!(status.success(), "exit status {status}");
}

/// Asks a service that is busy for its first `busy_for` requests.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, validator::Validate)]
struct Ask {
    /// How many requests the service turns away first (with 503s), and with what.
    busy_for: u32,
    unavailable: bool,
}
natsrpc::request!(Ask => u32, service = "busy", endpoint = "ask", idempotent = true);

/// Refused on business grounds, every time.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, validator::Validate)]
struct Refused {}
natsrpc::request!(Refused => (), service = "busy", endpoint = "refused", idempotent = true);

type Asked = std::sync::Arc<std::sync::atomic::AtomicU32>;

async fn ask(natsrpc::State(asked): natsrpc::State<Asked>, ask: Ask) -> Result<u32, natsrpc::ServiceError> {
    let n = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    match (n <= ask.busy_for, ask.unavailable) {
        (true, false) => Err(natsrpc::ServiceError::overloaded(1)),
        (true, true) => Err(natsrpc::ServiceError::unavailable("restarting")),
        (false, _) => Ok(n),
    }
}

async fn refused(
    natsrpc::State(asked): natsrpc::State<Asked>,
    _: Refused,
) -> Result<(), natsrpc::ServiceError> {
    asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Err(natsrpc::ServiceError::conflict("sold_out", "nothing left"))
}

#[tokio::test]
async fn a_service_saying_not_now_is_asked_again_and_a_refusal_is_not() {
    let (_server, nats) = private_nats().await;
    let asked = Asked::default();
    let service = natsrpc::Service::builder("busy", "1.0.0")
        .state(asked.clone())
        .endpoint(ask)
        .endpoint(refused)
        .start(&nats)
        .await
        .unwrap();
    let reset = || asked.store(0, std::sync::atomic::Ordering::SeqCst);
    let patient = Client::new(nats.clone()).with_retry(RetryPolicy::exponential(4, Duration::from_millis(5)));

    // 503s, overloaded then unavailable: asked again until the service takes it.
    for unavailable in [false, true] {
        reset();
        assert_eq!(patient.call(&Ask { busy_for: 2, unavailable }).await.unwrap(), 3, "the third attempt");
    }
    // Out of attempts, the last answer is the caller's, and says it may be retried later.
    reset();
    let error = patient.call(&Ask { busy_for: 9, unavailable: false }).await.unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 4, "four attempts in all");
    // Without a policy, once.
    reset();
    let once = Client::new(nats.clone()).call(&Ask { busy_for: 1, unavailable: false }).await.unwrap_err();
    assert_eq!((once.status(), once.code()), (Some(503), Some("overloaded")));
    // A business refusal is the request's own answer: never asked twice.
    reset();
    let error = patient.call(&Refused {}).await.unwrap_err();
    assert!(!error.is_retryable());
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    service.stop(Duration::from_secs(5)).await.unwrap();
}

/// Asks every census taker for its count.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, validator::Validate)]
struct Count {
    #[validate(range(max = 10))]
    round: u32,
}
natsrpc::request!(Count => u32, service = "census", endpoint = "count");

#[tokio::test]
async fn a_scatter_gather_gathers_every_typed_answer_up_to_its_bound() {
    use futures::StreamExt;
    let (_server, nats) = private_nats().await;
    // Three responders outside any queue group: each answers every request, the third an error.
    let mut responders = Vec::new();
    for n in 1..=3u32 {
        let mut requests = nats.subscribe("census.count").await.unwrap();
        let nats = nats.clone();
        responders.push(tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let body = if n == 3 {
                    serde_json::json!({ "ok": false, "error": { "status": 503, "kind": "unavailable", "code": "unavailable", "message": "counting" } })
                } else {
                    serde_json::json!({ "ok": true, "data": n })
                };
                if let Some(reply) = request.reply {
                    nats.publish(reply, body.to_string().into()).await.unwrap();
                }
            }
        }));
    }
    nats.flush().await.unwrap();
    let client = Client::new(nats.clone()).with_timeout(Duration::from_secs(2));
    let stall = Duration::from_millis(300);

    let all = client.request_many(&Count { round: 1 }, 10, stall).await.unwrap();
    let mut counts: Vec<u32> = all.iter().filter_map(|a| a.as_ref().ok().copied()).collect();
    counts.sort_unstable();
    assert_eq!(counts, [1, 2], "{all:?}");
    let failed: Vec<_> = all.iter().filter_map(|a| a.as_ref().err()).collect();
    assert_eq!(failed.len(), 1, "{all:?}");
    assert_eq!(failed[0].code(), Some("unavailable"));

    assert_eq!(client.request_many(&Count { round: 2 }, 2, stall).await.unwrap().len(), 2, "at most two");
    let refused = client.request_many(&Count { round: 11 }, 10, stall).await.unwrap_err();
    assert!(matches!(refused, RpcError::Validation { .. }), "checked before sending: {refused:?}");
    for responder in responders {
        responder.abort();
    }
    let nobody = client.request_many(&Count { round: 3 }, 10, Duration::from_millis(100)).await.unwrap();
    assert!(nobody.is_empty(), "no answer is an empty gathering: {nobody:?}");
}
