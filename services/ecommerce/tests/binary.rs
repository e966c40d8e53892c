//! The `ecommerce` binary over a real (private) nats-server: serves, is discoverable, drains on SIGTERM.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ecommerce::payloads::{Payloads, Size};
use natsrpc::Client;
use natsrpc::testing::NatsServer;

#[tokio::test]
async fn the_binary_serves_orders_and_exits_0_on_sigterm() {
    let server = NatsServer::start().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ecommerce"))
        .env("NATS_URL", server.url())
        .env("ECOMMERCE_SKUS", "20")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();

    let mut info = None;
    for _ in 0..200 {
        if let Ok(reply) = nats.request("$SRV.INFO.ecommerce", "".into()).await {
            info = Some(serde_json::from_slice::<serde_json::Value>(&reply.payload).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let info = info.expect("the service answers $SRV.INFO");
    let mut endpoints: Vec<&str> =
        info["endpoints"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    endpoints.sort();
    assert_eq!(endpoints, ["cancel_order", "create_order", "get_order", "reserve_inventory", "restock"]);
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

    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exit status {status}");
}
