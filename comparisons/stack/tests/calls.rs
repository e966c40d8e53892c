//! Calls between services on the NATS stack: each service in a process of its own, reaching the
//! others over NATS with the caller's correlation id and deadline. An overview joins its parts,
//! or names the part that failed, was late or had nobody to answer; a job's records reach
//! analytics in chunks.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ecommerce::contracts::GetOrderOverview;
use faults::FaultSettings;
use natsrpc::testing::NatsServer;
use natsrpc::{CallOptions, Client, RpcError};
use stack::Hosting;
use stack::testing::checks;

fn hosting(services: &[&'static str]) -> Hosting {
    Hosting { skus: 50, services: services.to_vec(), ingest_chunk: 10, ..Hosting::default() }
}

#[tokio::test]
async fn services_in_processes_of_their_own_call_each_other_over_nats() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    // Three connections, as three processes would have: nothing is shared but NATS.
    let mut running = Vec::new();
    for service in stack::SERVICES {
        let own = natsrpc::connect(&server.url()).await.unwrap();
        running.extend(hosting(&[service]).start_on(&own).await.unwrap());
    }
    let client = Client::new(nats);
    checks::overview_gathers_its_parts(&client, 11).await.unwrap();
    checks::jobs_reach_analytics(&client, 12).await.unwrap();
    for service in running {
        service.stop(Duration::from_secs(2)).await.unwrap();
    }
}

#[tokio::test]
async fn a_late_part_and_a_missing_service_are_named_within_the_callers_deadline() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let mut running = hosting(&["ecommerce", "analytics"]).start_on(&nats).await.unwrap();
    let client = Client::new(nats.clone());
    let receipt = client.call(&ecommerce::payloads::Payloads::new(5, 50).order_of(2)).await.unwrap();
    let overview =
        GetOrderOverview { order_id: receipt.order_id.clone(), attachments: vec!["upl_attached_01".into()] };

    // No file service at all: the part has nobody to answer, and the overview says which.
    let started = std::time::Instant::now();
    let error = client.call(&overview).await.unwrap_err();
    let RpcError::Remote(remote) = &error else { panic!("{error:?}") };
    assert_eq!((remote.status, remote.code.as_str()), (503, "part_unavailable"));
    assert_eq!(remote.path.as_deref(), Some("fileproc.upload_status[upl_attached_01]"));
    assert!(remote.message.contains("1 of 4 parts"), "{}", remote.message);
    assert!(started.elapsed() < Duration::from_secs(2), "no responders is known at once");

    // A file service that takes 3 s: with a 1 s deadline, that part is late and named, and the
    // overview answers within the deadline (a reply at all, rather than the caller's own timeout).
    let slow = Hosting {
        faults: FaultSettings { extra_latency_ms: 3000, ..FaultSettings::default() },
        ..hosting(&["fileproc"])
    };
    running.extend(slow.start_on(&nats).await.unwrap());
    let started = std::time::Instant::now();
    let within = CallOptions::new().timeout(Duration::from_secs(1));
    let error = client.call_with(&overview, within).await.unwrap_err();
    let waited = started.elapsed();
    let RpcError::Remote(remote) = &error else { panic!("{error:?}") };
    assert_eq!((remote.status, remote.code.as_str()), (504, "part_late"));
    assert_eq!(remote.path.as_deref(), Some("fileproc.upload_status[upl_attached_01]"));
    assert!(remote.message.contains("did not answer"), "{}", remote.message);
    // The part had the deadline less its reserve (900 ms); it cannot have been given up sooner.
    assert!(waited >= Duration::from_millis(850), "gave up too soon: {waited:?}");
    for service in running {
        service.stop(Duration::from_secs(5)).await.unwrap();
    }
}
