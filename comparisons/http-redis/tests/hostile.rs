//! The hostile-input corpus (`data/hostile/`) against every endpoint of the `http-redis` binary,
//! over the in-memory store (http-memory) and over Redis: each case answered with its envelope,
//! header-safe, echoing no secret, in replies or in `GET /stats`; every service still answering
//! afterwards, and the process still up.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use stack::redis::RedisPool;
use stack::testing::{hostile, spawn_http};

async fn replay(store: &str) {
    let prefix = format!("natsrpc-test:{}", nuid::next());
    let env = [("STORE", store), ("REDIS_PREFIX", prefix.as_str())];
    let (mut process, base) = spawn_http(env!("CARGO_BIN_EXE_http-redis"), &[], &env).await.unwrap();
    let cases = hostile::corpus().unwrap();
    let checked = hostile::replay_over_http(&cases, &base)
        .await
        .unwrap_or_else(|failures| panic!("{} failures:\n{}", failures.len(), failures.join("\n")));
    assert!(checked > 500, "{checked} requests");
    let stats = reqwest::get(format!("{base}/stats")).await.unwrap().text().await.unwrap();
    assert_eq!(hostile::echoed_in(&cases, &stats), Vec::<String>::new(), "GET /stats");
    assert!(process.exited().is_none(), "still running");
    assert!(process.terminate().await.unwrap().success(), "a clean stop on SIGTERM");
    RedisPool::connect("redis://127.0.0.1:6379", 1, &prefix).await.unwrap().clear().await.unwrap();
}

#[tokio::test]
async fn http_memory_answers_every_hostile_case_and_keeps_answering() {
    replay("memory").await;
}

#[tokio::test]
async fn http_redis_answers_every_hostile_case_and_keeps_answering() {
    replay("redis").await;
}
