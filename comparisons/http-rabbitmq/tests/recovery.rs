//! The stack outlives its broker: a private RabbitMQ is killed under the gateway and a worker and
//! started again on the same port. Meanwhile the gateway says it is unhealthy and refuses calls at
//! once (no call hangs on a connection that is not there); afterwards the gateway and the worker
//! connect again by themselves and serve, with nothing restarted by hand.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use natsrpc::testing::ServiceProcess;
use stack::testing::{RabbitServer, free_port, restock_until_ok};

const BINARY: &str = env!("CARGO_BIN_EXE_http-rabbitmq");
const PASSWORD: &str = "recovery-battery-staple";

async fn health(base: &str) -> Option<u16> {
    let answer = reqwest::Client::new().get(format!("{base}/health")).send().await.ok()?;
    Some(answer.status().as_u16())
}

/// Waits up to `within` for `/health` to answer `status`.
async fn health_becomes(base: &str, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    let mut last = None;
    while Instant::now() < deadline {
        last = health(base).await;
        if last == Some(status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base}/health did not become {status} within {within:?}: last {last:?}");
}

#[tokio::test]
async fn the_gateway_and_the_workers_connect_again_after_the_broker_restarts() {
    let mut server = RabbitServer::start("shop", PASSWORD, "orders", None).unwrap();
    let url = server.url("shop", PASSWORD, "orders");
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let base = format!("http://{address}");
    let env = [
        ("AMQP_URL", url.as_str()),
        ("QUEUE_PREFIX", "recovery"),
        ("STORE", "memory"),
        ("HTTP_ADDR", address.as_str()),
        ("GATEWAY_TIMEOUT_MS", "2000"),
    ];
    let worker = ServiceProcess::spawn_with(BINARY, &["worker"], &env).unwrap();
    let gateway = ServiceProcess::spawn_with(BINARY, &["gateway"], &env).unwrap();
    restock_until_ok(&base, Duration::from_secs(30)).await.unwrap();
    health_becomes(&base, 200, Duration::from_secs(5)).await;

    server.kill();
    health_becomes(&base, 503, Duration::from_secs(10)).await;
    // While the broker is gone, a call is refused at once, not left to its timeout.
    let started = Instant::now();
    let answer = reqwest::Client::new()
        .post(format!("{base}/ecommerce/restock"))
        .header("content-type", "application/json")
        .body(r#"{"sku":"SKU-00001","quantity":5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 503);
    assert!(started.elapsed() < Duration::from_millis(1500), "refused after {:?}", started.elapsed());

    server.restart().unwrap();
    // The worker declares its queues again and the gateway connects again: served, by themselves.
    restock_until_ok(&base, Duration::from_secs(60)).await.unwrap();
    health_becomes(&base, 200, Duration::from_secs(5)).await;
    assert!(gateway.terminate().await.unwrap().success(), "the gateway stops cleanly");
    assert!(worker.terminate().await.unwrap().success(), "the worker stops cleanly");
}
