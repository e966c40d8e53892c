//! The `http-redis` binary answers every sample as the NATS services do, over Redis and, as the
//! HTTP-only control, over the in-memory store.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use natsrpc::testing::NatsServer;
use stack::Hosting;
use stack::redis::RedisPool;
use stack::testing::{parity, spawn_http};

async fn same_answers_as_nats(store: &str) {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let _services = Hosting { skus: 1000, units: 1000, ..Hosting::default() }.start_on(&nats).await.unwrap();

    let prefix = format!("natsrpc-test:{}", nuid::next());
    let env = [("STORE", store), ("REDIS_PREFIX", prefix.as_str()), ("ECOMMERCE_STOCK", "1000")];
    let (process, base) = spawn_http(env!("CARGO_BIN_EXE_http-redis"), &[], &env).await.unwrap();
    let compared = parity::http_against_nats(&nats, &base).await.unwrap();
    assert_eq!(compared, 36, "18 endpoints (all but the overview), a valid and an invalid sample each");
    assert!(process.terminate().await.unwrap().success(), "a clean stop on SIGTERM");
    RedisPool::connect("redis://127.0.0.1:6379", 1, &prefix).await.unwrap().clear().await.unwrap();
}

#[tokio::test]
async fn over_redis_every_sample_gets_the_answer_it_gets_over_nats() {
    same_answers_as_nats("redis").await;
}

#[tokio::test]
async fn over_memory_every_sample_gets_the_answer_it_gets_over_nats() {
    same_answers_as_nats("memory").await;
}
