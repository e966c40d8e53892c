//! `http-redis` over HTTPS (`HTTP_TLS_CERT`, `HTTP_TLS_KEY`) with a certificate from a test CA:
//! it serves every call of the services working together, its own calls to itself included
//! (`PEERS_CA`), to a client that trusts that CA; a client that does not, or that speaks plain
//! HTTP to it, gets nothing; it drains and exits 0 on SIGTERM.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use http_api::client::{HttpTransport, Routes};
use natsrpc::testing::{ServiceProcess, TestCa};
use stack::testing::{checks, free_port};

#[tokio::test]
async fn it_serves_https_to_clients_that_trust_its_ca_and_only_to_them() {
    let dir = std::env::temp_dir().join(format!("natsrpc-http-redis-tls-{}", nuid::next()));
    let pki = TestCa::make(&dir).unwrap();
    let other = TestCa::make(&dir.join("other")).unwrap();
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let (cert, key, ca) = (
        pki.server.0.display().to_string(),
        pki.server.1.display().to_string(),
        pki.ca.display().to_string(),
    );
    let env = [
        ("HTTP_ADDR", address.as_str()),
        ("HTTP_TLS_CERT", cert.as_str()),
        ("HTTP_TLS_KEY", key.as_str()),
        ("PEERS_CA", ca.as_str()),
        ("STORE", "memory"),
        ("ECOMMERCE_SKUS", "50"),
    ];
    let process = ServiceProcess::spawn_with(env!("CARGO_BIN_EXE_http-redis"), &[], &env).unwrap();
    let base = format!("https://{address}");
    let trusting = |ca: &std::path::Path| {
        natsrpc::Client::over(HttpTransport::trusting(Routes::all_at(base.clone()), Some(ca)).unwrap())
    };
    let client = trusting(&pki.ca);
    let restock = ecommerce::contracts::Restock { sku: "SKU-00001".into(), quantity: 5 };
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(error) = client.call(&restock).await {
        assert!(Instant::now() < deadline, "no answer over HTTPS: {error}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The overview's fan-out: the service calls itself over HTTPS, trusting PEERS_CA.
    checks::overview_gathers_its_parts(&client, 21).await.unwrap();

    let error = trusting(&other.ca).call(&restock).await.unwrap_err().to_string();
    assert!(
        error.contains("TLS failed") && error.contains("BadSignature"),
        "a CA that did not sign it: {error}"
    );
    let plain =
        natsrpc::Client::over(HttpTransport::new(Routes::all_at(format!("http://{address}"))).unwrap());
    let quick = natsrpc::CallOptions::new().timeout(Duration::from_secs(2));
    assert!(plain.call_with(&restock, quick).await.is_err(), "plain HTTP to the TLS port is not served");

    assert!(process.terminate().await.unwrap().success(), "a clean stop on SIGTERM");
    let _ = std::fs::remove_dir_all(dir);
}
