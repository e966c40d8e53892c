//! The hostile-input corpus (`data/hostile/`) against every endpoint of the three services on
//! NATS: each case answered with its envelope, header-safe, echoing no secret, in replies or in
//! `$SRV.STATS`; every service still answering afterwards.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use natsrpc::testing::NatsServer;
use stack::Hosting;
use stack::testing::{hostile, parity};

#[tokio::test]
async fn every_endpoint_on_nats_answers_every_hostile_case_and_keeps_answering() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let _services = Hosting::default().start_on(&nats).await.unwrap();
    let cases = hostile::corpus().unwrap();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let checked = hostile::replay("nats", &cases, async |subject, case, body| {
        hostile::over_nats(&nats, subject, case, body).await
    })
    .await
    .unwrap_or_else(|failures| panic!("{} failures:\n{}", failures.len(), failures.join("\n")));
    assert!(checked > 500, "{checked} requests");
    hostile::still_answering(async |service, endpoint, body| {
        parity::over_nats(&nats, service, endpoint, body).await
    })
    .await
    .unwrap();
    for service in stack::SERVICES {
        let stats = nats.request(format!("$SRV.STATS.{service}"), "".into()).await.unwrap();
        let stats = String::from_utf8_lossy(&stats.payload).into_owned();
        assert_eq!(hostile::echoed_in(&cases, &stats), Vec::<String>::new(), "{service}'s stats");
        assert!(stats.contains("last_error"), "{stats}");
    }
}
