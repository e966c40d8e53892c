//! The `analytics` binary over a real (private) nats-server: serves, is discoverable, drains on SIGTERM.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use analytics::payloads::{Payloads, Size};
use natsrpc::Client;
use natsrpc::testing::{NatsServer, ServiceProcess, endpoint_names};

#[tokio::test]
async fn the_binary_ingests_and_answers_queries_and_exits_0_on_sigterm() {
    let server = NatsServer::start().unwrap();
    let service = ServiceProcess::spawn(env!("CARGO_BIN_EXE_analytics"), &server.url(), &[]).unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let info = service.wait_for_info(&nats, "analytics").await.unwrap();
    assert_eq!(
        endpoint_names(&info),
        ["ingest_batch", "ingest_event", "query_aggregates", "query_timeseries", "top_n", "user_activity"]
    );

    let client = Client::new(nats);
    let mut payloads = Payloads::new(7, analytics::contracts::now_ms());
    let batch = payloads.ingest_batch(Size::Medium);
    let ingested = client.call(&batch).await.unwrap();
    assert_eq!(ingested.accepted as usize, batch.events.len());
    let msgpack = natsrpc::CallOptions::new().codec(natsrpc::Codec::MsgPack);
    let totals = client.call_with(&payloads.query_aggregates(), msgpack).await.unwrap();
    assert_eq!(totals.types.iter().map(|t| t.count).sum::<u64>(), batch.events.len() as u64);

    let status = service.terminate().await.unwrap();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn metrics_addr_serves_the_binarys_counters_and_a_taken_one_stops_it_at_start() {
    let server = NatsServer::start().unwrap();
    let address = format!("127.0.0.1:{}", natsrpc::testing::free_port().unwrap());
    let env = [("METRICS_ADDR", address.as_str())];
    let service = ServiceProcess::spawn(env!("CARGO_BIN_EXE_analytics"), &server.url(), &env).unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    service.wait_for_info(&nats, "analytics").await.unwrap();
    let mut payloads = Payloads::new(7, analytics::contracts::now_ms());
    Client::new(nats).call(&payloads.ingest_batch(Size::Small)).await.unwrap();
    let page = natsrpc::testing::scrape_metrics(&address).await.unwrap();
    assert_eq!(page[r#"natsrpc_requests_total{service="analytics",endpoint="ingest_batch"}"#], 1.0);
    assert_eq!(page[r#"natsrpc_requests_total{service="analytics",endpoint="top_n"}"#], 0.0);

    // Another process cannot have the same address: it says which setting, and exits.
    let taken = std::process::Command::new(env!("CARGO_BIN_EXE_analytics"))
        .env("NATS_URL", server.url())
        .env("METRICS_ADDR", &address)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&taken.stderr);
    assert!(!taken.status.success() && said.contains("METRICS_ADDR"), "{said}");
    assert!(service.terminate().await.unwrap().success());
}
