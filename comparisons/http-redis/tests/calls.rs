//! On the HTTP+Redis stack the services call each other over HTTP and the shop's events travel
//! through a Redis stream: every order counted once in analytics, overviews joined from their
//! parts or naming the failed one, a job's records forwarded; in one process, and with each
//! service in a process of its own.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http_api::client::{HttpTransport, Routes};
use natsrpc::Client;
use stack::redis::RedisPool;
use stack::testing::{checks, spawn_http};

const BINARY: &str = env!("CARGO_BIN_EXE_http-redis");

async fn clear(prefix: &str) {
    RedisPool::connect("redis://127.0.0.1:6379", 1, prefix).await.unwrap().clear().await.unwrap();
}

#[tokio::test]
async fn in_one_process_calls_cross_http_and_events_cross_a_redis_stream() {
    let prefix = format!("natsrpc-test:{}", nuid::next());
    let metrics = format!("127.0.0.1:{}", stack::testing::free_port().unwrap());
    let env = [
        ("STORE", "redis"),
        ("REDIS_PREFIX", prefix.as_str()),
        ("ECOMMERCE_SKUS", "50"),
        ("ORDER_EVENTS", "on"),
        ("METRICS_ADDR", metrics.as_str()),
    ];
    let (process, base) = spawn_http(BINARY, &[], &env).await.unwrap();
    let client = Client::over(HttpTransport::new(Routes::all_at(&base)).unwrap());
    checks::orders_counted_once(&client, 21).await.unwrap();
    checks::overview_gathers_its_parts(&client, 22).await.unwrap();
    checks::jobs_reach_analytics(&client, 23).await.unwrap();
    // The same metrics as a service on NATS, counted by the endpoints behind the HTTP API.
    let page = natsrpc::testing::scrape_metrics(&metrics).await.unwrap();
    let overviews = r#"natsrpc_requests_total{service="ecommerce",endpoint="get_order_overview"}"#;
    assert!(page[overviews] >= 1.0, "{page:?}");
    let asked = r#"natsrpc_requests_total{service="analytics",endpoint="user_activity"}"#;
    assert!(page[asked] >= 1.0, "the overview's call to analytics: {page:?}");
    assert!(process.terminate().await.unwrap().success());
    clear(&prefix).await;
}

#[tokio::test]
async fn each_service_in_a_process_of_its_own() {
    let prefix = format!("natsrpc-test:{}", nuid::next());
    let common = [
        ("STORE", "memory"),
        ("REDIS_PREFIX", prefix.as_str()),
        ("ECOMMERCE_SKUS", "50"),
        ("ORDER_EVENTS", "on"),
    ];
    let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        common.iter().map(|(k, v)| (*k, v.to_string())).chain(extra.iter().cloned()).collect()
    };
    let spawn = |env: Vec<(&'static str, String)>| async move {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        spawn_http(BINARY, &[], &env).await.unwrap()
    };
    let (analytics, analytics_at) = spawn(with(&[("SERVICES", "analytics".into())])).await;
    let (files, files_at) =
        spawn(with(&[("SERVICES", "fileproc".into()), ("PEERS", format!("analytics={analytics_at}"))])).await;
    let peers = format!("analytics={analytics_at},fileproc={files_at}");
    let (shop, shop_at) = spawn(with(&[("SERVICES", "ecommerce".into()), ("PEERS", peers.clone())])).await;

    let routes = Routes::all_at(&shop_at).with_list(&peers).unwrap();
    let client = Client::over(HttpTransport::new(routes).unwrap());
    checks::orders_counted_once(&client, 31).await.unwrap();
    checks::overview_gathers_its_parts(&client, 32).await.unwrap();
    checks::jobs_reach_analytics(&client, 33).await.unwrap();
    for process in [shop, files, analytics] {
        assert!(process.terminate().await.unwrap().success());
    }
    clear(&prefix).await;
}
