//! One trace of `get_order_overview`'s fan-out on the NATS stack, each service with a connection
//! of its own, its spans collected over OTLP. (The exporter is the process's own: this file is its
//! only test.)

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use natsrpc::Client;
use natsrpc::testing::{NatsServer, OtlpCollector};
use stack::Hosting;
use stack::testing::checks;

#[tokio::test]
async fn an_overview_and_its_parts_are_one_trace_across_services() {
    let collector = OtlpCollector::start().await.unwrap();
    natsrpc::trace::export_to(&collector.url()).unwrap();
    let server = NatsServer::start().unwrap();
    let mut running = Vec::new();
    for service in stack::SERVICES {
        let own = natsrpc::connect(&server.url()).await.unwrap();
        let hosting = Hosting { skus: 50, services: vec![service], ..Hosting::default() };
        running.extend(hosting.start_on(&own).await.unwrap());
    }
    let client = Client::new(natsrpc::connect(&server.url()).await.unwrap());
    let tree = checks::overview_is_one_trace(&client, &collector, 31).await.unwrap();
    println!("{tree}");
    for service in running {
        service.stop(Duration::from_secs(2)).await.unwrap();
    }
}
