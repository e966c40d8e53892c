//! `natsrpc` against the e-commerce service on a private nats-server: it lists the service, shows
//! its endpoints, schemas and figures, and calls it; a request that breaks the endpoint's schema
//! is refused by path and never sent (the service's figures show it did not come).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use ecommerce::domain::{MemoryStore, Shop};
use natsrpc::testing::NatsServer;

fn natsrpc(server: &NatsServer, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natsrpc"))
        .args(args)
        .env("NATS_URL", server.url())
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `create_order`'s requests answered so far, from the service's own figures.
fn orders_answered(server: &NatsServer) -> u64 {
    let out = natsrpc(server, &["stats", "ecommerce", "--json"], None);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let endpoints = stats[0]["endpoints"].as_array().unwrap();
    let create = endpoints.iter().find(|e| e["name"] == "create_order").unwrap();
    create["num_requests"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_shows_and_calls_a_service_and_refuses_a_request_its_schema_refuses() {
    let server = NatsServer::start().unwrap();
    let nats = async_nats::connect(server.url()).await.unwrap();
    let shop =
        Arc::new(Shop::new(MemoryStore::with_catalog(1000, 1_000_000), Arc::new(faults::Faults::none())));
    let service = ecommerce::service(shop).start(&nats).await.unwrap();
    let server = Arc::new(server);
    let run = {
        let server = Arc::clone(&server);
        move |args: Vec<&'static str>, stdin: Option<String>| {
            let server = Arc::clone(&server);
            tokio::task::spawn_blocking(move || natsrpc(&server, &args, stdin.as_deref()))
        }
    };

    let listed = run(vec!["ls"], None).await.unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let line = text(&listed.stdout).lines().find(|l| l.starts_with("ecommerce")).unwrap().to_string();
    assert!(line.contains("Orders, stock and payments") && line.contains(" 7 "), "{line}");

    let info = text(&run(vec!["info", "ecommerce"], None).await.unwrap().stdout);
    assert!(info.contains("ecommerce.create_order") && info.contains("request, response"), "{info}");
    let schema = run(vec!["schema", "ecommerce", "get_order"], None).await.unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert_eq!(schema["required"][0], "order_id");

    // A valid order is sent, and its receipt printed.
    let order = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/test-payloads/ecommerce/create_order.valid.json"
    ))
    .unwrap();
    let placed = run(vec!["call", "ecommerce.create_order"], Some(order.clone())).await.unwrap();
    assert!(placed.status.success(), "{}{}", text(&placed.stdout), text(&placed.stderr));
    let receipt: serde_json::Value = serde_json::from_slice(&placed.stdout).unwrap();
    assert_eq!(receipt["ok"], true);
    let before = tokio::task::spawn_blocking({
        let server = Arc::clone(&server);
        move || orders_answered(&server)
    })
    .await
    .unwrap();
    assert_eq!(before, 1);

    // Broken where its schema says: refused by path, exit 1, and never sent.
    let mut broken: serde_json::Value = serde_json::from_str(&order).unwrap();
    broken["order_id"] = "order-1".into();
    broken["items"][0]["quantity"] = "two".into();
    broken.as_object_mut().unwrap().remove("customer");
    let refused = run(vec!["call", "ecommerce.create_order", "-"], Some(broken.to_string())).await.unwrap();
    let said = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    for path in ["customer: is required", "items[0].quantity: must be integer", "order_id: must match"] {
        assert!(said.contains(path), "{path} in {said}");
    }
    assert!(said.contains("not sent"), "{said}");
    let control = run(vec!["call", "ecommerce.create_order\u{1b}[2J"], Some(order.clone())).await.unwrap();
    assert_eq!(
        control.status.code(),
        Some(1),
        "a subject with a control character: {}",
        text(&control.stderr)
    );
    let not_json = run(vec!["call", "ecommerce.create_order"], Some("{\"order_id\": ".into())).await.unwrap();
    assert_eq!(not_json.status.code(), Some(1), "{}", text(&not_json.stderr));
    let after = tokio::task::spawn_blocking({
        let server = Arc::clone(&server);
        move || orders_answered(&server)
    })
    .await
    .unwrap();
    assert_eq!(after, before, "the refused requests never reached the service");

    // Sent anyway, the service's own answer (a quantity that is text does not decode), exit 1.
    let unchecked =
        run(vec!["call", "ecommerce.create_order", "--no-check"], Some(broken.to_string())).await.unwrap();
    assert_eq!(unchecked.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&unchecked.stdout).unwrap();
    assert_eq!(answer["error"]["kind"], "malformed_payload");

    let stats = text(&run(vec!["stats", "ecommerce"], None).await.unwrap().stdout);
    assert!(
        stats.lines().any(|l| l.trim_start().starts_with("create_order") && l.contains(" 2 ")),
        "{stats}"
    );
    let nothing = run(vec!["info", "nothere"], None).await.unwrap();
    assert_eq!(nothing.status.code(), Some(3), "no such service: no answer");
    let bad_name = run(vec!["stats", "$SRV.>"], None).await.unwrap();
    assert_eq!(bad_name.status.code(), Some(1), "{}", text(&bad_name.stderr));

    // The running version against its own recorded contract, then against one it breaks.
    let recorded = run(vec!["info", "ecommerce", "--json"], None).await.unwrap();
    let dir = std::env::temp_dir().join(format!("natsrpc-cli-{}", nuid::next()));
    std::fs::create_dir_all(&dir).unwrap();
    let released = dir.join("released.json");
    std::fs::write(&released, &recorded.stdout).unwrap();
    let released_arg: &'static str = Box::leak(released.display().to_string().into_boxed_str());
    let same = run(vec!["compat", released_arg, "ecommerce"], None).await.unwrap();
    assert!(same.status.success(), "{}", text(&same.stderr));
    assert!(text(&same.stdout).starts_with("compatible"), "{}", text(&same.stdout));
    let mut fewer: serde_json::Value = serde_json::from_slice(&recorded.stdout).unwrap();
    fewer[0]["endpoints"].as_array_mut().unwrap().retain(|e| e["name"] != "get_stock");
    let newer = dir.join("newer.json");
    std::fs::write(&newer, fewer.to_string()).unwrap();
    let newer_arg: &'static str = Box::leak(newer.display().to_string().into_boxed_str());
    let broken = run(vec!["compat", released_arg, newer_arg], None).await.unwrap();
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken.stderr));
    assert!(text(&broken.stderr).contains("ecommerce.get_stock: removed"), "{}", text(&broken.stderr));
    // A file that is no $SRV.INFO answer is the caller's mistake (2), not a breaking change (1).
    let wrong = dir.join("wrong.json");
    std::fs::write(&wrong, "{}").unwrap();
    let wrong_arg: &'static str = Box::leak(wrong.display().to_string().into_boxed_str());
    let mistaken = run(vec!["compat", released_arg, wrong_arg], None).await.unwrap();
    assert_eq!(mistaken.status.code(), Some(2), "{}", text(&mistaken.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    service.stop(std::time::Duration::from_secs(5)).await.unwrap();
}

#[test]
fn a_server_that_is_not_there_is_no_answer() {
    let out = Command::new(env!("CARGO_BIN_EXE_natsrpc"))
        .args(["--server", "nats://127.0.0.1:1", "ls"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("127.0.0.1:1"), "names the server: {}", text(&out.stderr));
}
