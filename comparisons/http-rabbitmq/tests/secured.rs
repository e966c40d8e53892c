//! The HTTP+RabbitMQ stack on a private RabbitMQ that is secured as a deployment would be: no
//! `guest`, a user of its own owning a virtual host of its own, and a TLS-only listener that wants
//! a client certificate from the test's CA. The gateway and a worker serve over `amqps://` with
//! `AMQP_CA` and `AMQP_CERT`/`AMQP_KEY`, printing the password in no line even at trace level; each
//! wrong setting is refused promptly with its cause named and the password unquoted.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http_rabbitmq::Broker;
use natsrpc::testing::{ServiceProcess, TestCa};
use stack::testing::{RabbitServer, RabbitTls, free_port, restock_until_ok};

const BINARY: &str = env!("CARGO_BIN_EXE_http-rabbitmq");
const PASSWORD: &str = "c0rrect-h0rse";

fn broker(url: &str, ca: &Path, client: Option<&(PathBuf, PathBuf)>) -> Broker {
    let path = |p: &Path| p.display().to_string();
    let (cert, key) = client.map(|(c, k)| (path(c), path(k))).unzip();
    Broker::from_lookup(|name| match name {
        "AMQP_URL" => Some(url.to_string()),
        "AMQP_CA" => Some(path(ca)),
        "AMQP_CERT" => cert.clone(),
        "AMQP_KEY" => key.clone(),
        _ => None,
    })
    .unwrap()
}

/// The error a refused broker gets, within a generous bound (a refusal must not hang).
async fn refused(broker: &Broker) -> String {
    let attempt = tokio::time::timeout(Duration::from_secs(30), broker.connect("refused")).await;
    let outcome = attempt.expect("a refused connection is reported, not retried without end");
    outcome.map(|_| ()).expect_err("the broker let it in").to_string()
}

#[tokio::test]
async fn the_stack_serves_over_amqps_as_its_own_user_and_each_wrong_setting_is_named() {
    let dir = std::env::temp_dir().join(format!("natsrpc-rabbitmq-tls-{}", nuid::next()));
    let pki = TestCa::make(&dir).unwrap();
    let other = TestCa::make(&dir.join("other")).unwrap();
    let tls = RabbitTls { ca: pki.ca.clone(), server: pki.server.clone(), require_client_certificate: true };
    let server = RabbitServer::start("shop", PASSWORD, "orders", Some(&tls)).unwrap();
    let url = server.url("shop", PASSWORD, "orders");

    // Each way of getting it wrong, by the library every process of the stack connects with.
    broker(&url, &pki.ca, Some(&pki.client)).connect("probe").await.unwrap();
    let error = refused(&broker(&url.replace(PASSWORD, "wr0ng-battery"), &pki.ca, Some(&pki.client))).await;
    assert!(error.contains("refused the user and password"), "{error}");
    assert!(!error.contains("wr0ng-battery") && error.contains("shop:***@"), "{error}");
    let error = refused(&broker(&url.replace("shop:", "guest:"), &pki.ca, Some(&pki.client))).await;
    assert!(error.contains("refused the user and password"), "no guest here: {error}");
    let error = refused(&broker(&url.replace("/orders", "/%2f"), &pki.ca, Some(&pki.client))).await;
    assert!(error.contains("may not open the virtual host"), "{error}");
    let error = refused(&broker(&url, &pki.ca, None)).await;
    assert!(
        // The alert or, when the greeting crossed it on the wire, the reset: both name the cause.
        error.contains("TLS failed")
            && (error.contains("CertificateRequired") || error.contains("require a client certificate")),
        "no client certificate: {error}"
    );
    let error = refused(&broker(&url, &other.ca, Some(&pki.client))).await;
    assert!(error.contains("TLS failed"), "a CA that did not sign the broker's certificate: {error}");
    let error = refused(&broker(&url.replace("amqps://", "amqp://"), &pki.ca, None)).await;
    assert!(error.contains("cannot connect to amqp://shop:***@"), "{error}");
    assert!(
        error.contains("(a TLS-only listener reached with amqp://?)"),
        "plain AMQP to a TLS listener: {error}"
    );

    // The stack's processes, configured by the documented variables only.
    let prefix = format!("natsrpc-test-{}", nuid::next());
    let (ca, cert, key) = (
        pki.ca.display().to_string(),
        pki.client.0.display().to_string(),
        pki.client.1.display().to_string(),
    );
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let env = |url: &str| -> Vec<(String, String)> {
        [
            ("AMQP_URL", url),
            ("AMQP_CA", &ca),
            ("AMQP_CERT", &cert),
            ("AMQP_KEY", &key),
            ("QUEUE_PREFIX", &prefix),
            ("STORE", "memory"),
            ("HTTP_ADDR", &address),
            ("RUST_LOG", "trace"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
    };
    let spawn = |role: &str, url: &str| {
        let log = dir.join(format!("{role}.log"));
        let env = env(url);
        let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let process =
            ServiceProcess::spawn_logging(BINARY, &[role], &env, std::fs::File::create(&log).unwrap())
                .unwrap();
        (process, log)
    };
    let (worker, worker_log) = spawn("worker", &url);
    let (gateway, gateway_log) = spawn("gateway", &url);
    // A call through the gateway, the secured broker and the worker (503 until it consumes).
    restock_until_ok(&format!("http://{address}"), Duration::from_secs(30)).await.unwrap();
    assert!(gateway.terminate().await.unwrap().success());
    assert!(worker.terminate().await.unwrap().success());
    for log in [&worker_log, &gateway_log] {
        let printed = std::fs::read_to_string(log).unwrap();
        assert!(printed.contains("TRACE") || printed.contains("DEBUG"), "logged at trace: {printed}");
        assert!(!printed.contains(PASSWORD), "{} prints the password: {printed}", log.display());
    }

    // A gateway with a wrong password exits at once, saying why, without the password it was given.
    let (mut wrong, log) = spawn("gateway", &url.replace(PASSWORD, "wr0ng-battery"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = wrong.exited() {
            break status;
        }
        assert!(Instant::now() < deadline, "a refused gateway keeps trying instead of exiting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(printed.contains("refused the user and password of AMQP_URL"), "it says why: {printed}");
    assert!(!printed.contains("wr0ng-battery"), "the password is printed: {printed}");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
