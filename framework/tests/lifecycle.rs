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
