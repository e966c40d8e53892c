//! The `ecommerce` binary over a real (private) nats-server: serves, is discoverable, drains on SIGTERM.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ecommerce::payloads::{Payloads, Size};
use natsrpc::Client;
use natsrpc::testing::{NatsServer, ServiceProcess, endpoint_names};

#[tokio::test]
async fn the_binary_serves_orders_and_exits_0_on_sigterm() {
    let server = NatsServer::start().unwrap();
    let service =
        ServiceProcess::spawn(env!("CARGO_BIN_EXE_ecommerce"), &server.url(), &[("ECOMMERCE_SKUS", "20")])
            .unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let info = service.wait_for_info(&nats, "ecommerce").await.unwrap();
    assert_eq!(
        endpoint_names(&info),
        [
            "cancel_order",
            "create_order",
            "get_order",
            "get_order_overview",
            "get_stock",
            "reserve_inventory",
            "restock"
        ]
    );
    // Each endpoint's INFO entry carries its JSON Schemas.
    let create = info["endpoints"].as_array().unwrap().iter().find(|e| e["name"] == "create_order").unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(create["metadata"]["request_schema"].as_str().unwrap()).unwrap();
    assert_eq!(schema["title"], "CreateOrder");
    assert_eq!(schema["properties"]["items"]["maxItems"], 100);
    assert!(create["metadata"]["response_schema"].as_str().unwrap().contains("OrderReceipt"));

    let client = Client::new(nats);
    let order = Payloads::new(7, 20).create_order(Size::Medium);
    let receipt = client.call(&order).await.unwrap();
    assert_eq!(receipt.charged, order.payment.amount);
    let msgpack = natsrpc::CallOptions::new().codec(natsrpc::Codec::MsgPack);
    assert_eq!(client.call_with(&order, msgpack).await.unwrap(), receipt, "a retry in another codec");

    let status = service.terminate().await.unwrap();
    assert!(status.success(), "exit status {status}");
}

/// Against a server that wants a user and password: the binary joins with the documented variables,
/// and with a wrong password it exits at once, saying why without quoting the password.
#[tokio::test]
async fn the_binary_joins_a_server_that_wants_credentials_and_says_so_when_refused() {
    let server = NatsServer::start_with_config(
        "authorization { users = [ { user: shop, password: \"c0rrect-h0rse\" } ] }",
    )
    .unwrap();
    let credentials = [("NATS_USER", "shop"), ("NATS_PASSWORD", "c0rrect-h0rse"), ("ECOMMERCE_SKUS", "20")];
    let service =
        ServiceProcess::spawn(env!("CARGO_BIN_EXE_ecommerce"), &server.url(), &credentials).unwrap();
    let url = server.url();
    let config = natsrpc::NatsConfig::from_lookup(|name| match name {
        "NATS_URL" => Some(url.clone()),
        _ => credentials.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()),
    })
    .unwrap();
    let nats = config.connect().await.unwrap();
    service.wait_for_info(&nats, "ecommerce").await.unwrap();
    let order = Payloads::new(7, 20).create_order(Size::Small);
    assert_eq!(Client::new(nats).call(&order).await.unwrap().charged, order.payment.amount);
    assert!(service.terminate().await.unwrap().success());

    let mut refused = std::process::Command::new(env!("CARGO_BIN_EXE_ecommerce"))
        .env("NATS_URL", server.url())
        .env("NATS_USER", "shop")
        .env("NATS_PASSWORD", "wr0ng-battery")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while refused.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = refused.kill();
            panic!("a refused service keeps trying instead of exiting");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let output = refused.wait_with_output().unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr).to_string() + &String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("refused the credentials (NATS_USER/NATS_PASSWORD)"), "{said}");
    assert!(!said.contains("wr0ng-battery"), "the password is not quoted: {said}");
}

/// A reply to `create_order` lost on its way: the client's retry with the same `Idempotency-Key`
/// gets the first receipt, and the stock was taken once.
#[tokio::test]
async fn a_retry_after_a_lost_reply_gets_the_first_receipt_and_takes_stock_once() {
    let server = NatsServer::start().unwrap();
    let service =
        ServiceProcess::spawn(env!("CARGO_BIN_EXE_ecommerce"), &server.url(), &[("ECOMMERCE_SKUS", "20")])
            .unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    service.wait_for_info(&nats, "ecommerce").await.unwrap();
    let client = Client::new(nats.clone());
    let order = Payloads::new(9, 20).order_of(1);
    let sku = order.items[0].sku.clone();
    let stock = || async {
        client.call(&ecommerce::contracts::GetStock { sku: sku.clone() }).await.unwrap().available
    };
    let before = stock().await;

    // Sent with a reply subject nobody reads: the order is placed, its receipt lost.
    let mut headers = natsrpc::async_nats::HeaderMap::new();
    headers.insert(natsrpc::headers::IDEMPOTENCY_KEY, "checkout-9-attempt");
    let body = serde_json::to_vec(&order).unwrap();
    let lost = nats.publish_with_reply_and_headers(
        "ecommerce.create_order",
        "lost.receipts",
        headers.clone(),
        body.clone().into(),
    );
    lost.await.unwrap();
    let mut taken = before;
    for _ in 0..100 {
        taken = stock().await;
        if taken < before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(taken, before - 1, "the first attempt took the stock");

    // The retry is answered from the kept reply (marked so), not by a second saga.
    // (While the first attempt is still being kept, a retry is told to retry later.)
    let mut replayed = None;
    for _ in 0..100 {
        let answer =
            nats.request_with_headers("ecommerce.create_order", headers.clone(), body.clone().into());
        let answer = answer.await.unwrap();
        if natsrpc::headers::reply_status(answer.headers.as_ref()) != 503 {
            replayed = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let replayed = replayed.expect("the first attempt's receipt was kept");
    let marked =
        replayed.headers.as_ref().and_then(|h| h.get(natsrpc::headers::REPLAYED)).map(|v| v.as_str());
    assert_eq!(marked, Some("true"));
    let retry = natsrpc::CallOptions::new().idempotency_key("checkout-9-attempt");
    let receipt = client.call_with(&order, retry).await.unwrap();
    assert_eq!(receipt.order_id, order.order_id);
    assert_eq!(stock().await, before - 1, "the retry took nothing more");
    assert!(service.terminate().await.unwrap().success());
}
