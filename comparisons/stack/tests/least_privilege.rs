//! The shipped least-privilege server configuration (`config/nats-server/least-privilege.conf`)
//! on a private nats-server: each service as its own process and user, with its own reply inbox,
//! does all its work (orders and their JetStream events, the overview's fan-out, jobs forwarded to
//! analytics) without one refusal; a reader may read and is told, by name, that it may not order;
//! a service started as the wrong user stops at once and says which subjects it was refused.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use ecommerce::payloads::{Payloads, Size};
use natsrpc::testing::{NatsServer, ServiceProcess};
use natsrpc::{Client, NatsConfig, RpcError};
use stack::testing::checks;

const USERS: [&str; 5] = ["ecommerce", "analytics", "fileproc", "caller", "reader"];

/// The shipped file, with each user's password defined on top as nats-server would read it from
/// its environment.
fn least_privilege(password: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/nats-server/least-privilege.conf");
    let shipped = std::fs::read_to_string(path).unwrap();
    let passwords: String =
        USERS.iter().map(|user| format!("{}_PASSWORD: \"{password}\"\n", user.to_uppercase())).collect();
    format!("{passwords}{shipped}")
}

fn user(server: &NatsServer, user: &str, password: &str) -> NatsConfig {
    let url = server.url();
    NatsConfig::from_lookup(|name| match name {
        "NATS_URL" => Some(url.clone()),
        "NATS_USER" => Some(user.into()),
        "NATS_PASSWORD" => Some(password.into()),
        "NATS_INBOX_PREFIX" => Some(format!("_INBOX_{user}")),
        _ => None,
    })
    .unwrap()
}

/// `nats-services` hosting `service` only, as `user`, with the variables a deployment sets; its log
/// goes to a file in `dir`.
fn spawn(
    server: &NatsServer,
    service: &str,
    user: &str,
    password: &str,
    dir: &Path,
) -> (ServiceProcess, PathBuf) {
    let log = dir.join(format!("{service}-as-{user}.log"));
    let inbox = format!("_INBOX_{user}");
    let url = server.url();
    let env = [
        ("NATS_URL", url.as_str()),
        ("NATS_USER", user),
        ("NATS_PASSWORD", password),
        ("NATS_INBOX_PREFIX", inbox.as_str()),
        ("SERVICES", service),
        ("STORE", "memory"),
        ("ORDER_EVENTS", "on"),
        ("ECOMMERCE_SKUS", "50"),
    ];
    let file = std::fs::File::create(&log).unwrap();
    (ServiceProcess::spawn_logging(env!("CARGO_BIN_EXE_nats-services"), &[], &env, file).unwrap(), log)
}

#[tokio::test]
async fn each_service_does_its_work_with_only_its_own_permissions() {
    let password = format!("pw-{}", nuid::next());
    let server = NatsServer::start_with_config(&least_privilege(&password)).unwrap();
    let dir = std::env::temp_dir().join(format!("least-privilege-{}", nuid::next()));
    std::fs::create_dir_all(&dir).unwrap();

    let mut services = Vec::new();
    for service in ["ecommerce", "analytics", "fileproc"] {
        services.push(spawn(&server, service, service, &password, &dir));
    }
    let caller_nats = user(&server, "caller", &password).connect().await.unwrap();
    for (service, (process, _)) in ["ecommerce", "analytics", "fileproc"].iter().zip(&services) {
        process.wait_for_info(&caller_nats, service).await.unwrap();
    }
    let caller = Client::new(caller_nats);
    checks::orders_counted_once(&caller, 11).await.unwrap();
    checks::overview_gathers_its_parts(&caller, 12).await.unwrap();
    checks::jobs_reach_analytics(&caller, 13).await.unwrap();

    let reader = Client::new(user(&server, "reader", &password).connect().await.unwrap());
    let mut payloads = Payloads::new(14, 50);
    reader.call(&ecommerce::contracts::GetStock { sku: "SKU-00001".into() }).await.unwrap();
    let order = payloads.create_order(Size::Small);
    let quick = natsrpc::CallOptions::new().timeout(Duration::from_millis(500));
    let error = reader.call_with(&order, quick).await.unwrap_err();
    assert!(matches!(error, RpcError::PermissionDenied(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "permission denied by the NATS server: publish to `ecommerce.create_order`"
    );

    for (process, log) in services {
        assert!(process.terminate().await.unwrap().success());
        let said = std::fs::read_to_string(&log).unwrap();
        assert!(!said.contains("permission denied"), "{}: {said}", log.display());
    }

    // The shop started as fileproc's user: refused its subjects, it exits at once and says which.
    let (mut wrong, log) = spawn(&server, "ecommerce", "fileproc", &password, &dir);
    let mut status = None;
    for _ in 0..200 {
        status = wrong.exited();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(status.is_some_and(|s| !s.success()), "still running or exited 0: {status:?}");
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("permission denied by the NATS server: subscribe to `ecommerce.>`"), "{said}");
    assert!(!said.contains(&password), "the password stays out of the log: {said}");
    let _ = std::fs::remove_dir_all(dir);
}
