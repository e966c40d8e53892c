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
