//! Every stack of the checked-in config starts from it, is ready, answers a real request through
//! its whole path, and stops by PID leaving no process and no Redis key behind. NATS stacks run
//! against a private nats-server and HTTP stacks on free ports, so that stacks started by hand
//! on the config's own ports are left alone.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use benchmarks::config::{BenchmarkConfig, Transport};
use benchmarks::process::alive;
use benchmarks::stacks::{RunningStack, StartOptions};
use natsrpc::testing::NatsServer;
use support::{bin_dir, workspace};

mod support;

async fn redis_keys(prefix: &str) -> u64 {
    // Clearing an empty prefix deletes nothing: the count is what was there.
    let pool = stack::redis::RedisPool::connect("redis://127.0.0.1:6379", 1, prefix).await.unwrap();
    pool.clear().await.unwrap()
}

#[tokio::test]
async fn every_configured_stack_starts_answers_and_stops_cleanly() {
    let config = BenchmarkConfig::load(&workspace().join("config/benchmark-config.yaml")).unwrap();
    let logs = std::env::temp_dir().join(format!("natsrpc-stacks-{}", nuid::next()));
    let options = StartOptions { bin_dir: bin_dir(), ..StartOptions::beside_this_binary(&logs).unwrap() };
    let nats_server = NatsServer::start().unwrap();
    let restock = serde_json::json!({"sku": "SKU-00001", "quantity": 5});

    assert!(config.stacks.len() >= 6, "the stacks and controls of the comparison");
    for (name, spec) in &config.stacks {
        let mut spec = spec.clone();
        spec.url = match spec.transport {
            Transport::Nats => nats_server.url(),
            Transport::Http => format!("http://127.0.0.1:{}", stack::testing::free_port().unwrap()),
        };
        let running = RunningStack::start(name, &spec, &options).await.unwrap();
        let pids = running.pids();
        assert_eq!(pids.len(), spec.processes.iter().map(|p| p.instances as usize).sum::<usize>());

        let answer: serde_json::Value = match (spec.transport, &spec.echo_subject) {
            (Transport::Nats, Some(subject)) => {
                let nats = natsrpc::connect(&spec.url).await.unwrap();
                let reply = nats.request(subject.clone(), restock.to_string().into()).await.unwrap();
                serde_json::from_slice(&reply.payload).unwrap()
            }
            (Transport::Nats, None) => {
                let nats = natsrpc::connect(&spec.url).await.unwrap();
                stack::testing::parity::over_nats(&nats, "ecommerce", "restock", &restock).await.unwrap().1
            }
            (Transport::Http, _) => {
                let http = reqwest::Client::new();
                stack::testing::parity::over_http(&http, &spec.url, "ecommerce", "restock", &restock)
                    .await
                    .unwrap()
                    .1
            }
        };
        if spec.echo_subject.is_some() {
            assert_eq!(answer, restock, "{name} echoes");
        } else {
            assert_eq!(answer["data"]["sku"], "SKU-00001", "{name}: {answer}");
        }

        let prefix = running.prefix.clone();
        running.stop(Duration::from_secs(10)).await.unwrap();
        assert!(pids.iter().all(|pid| !alive(*pid)), "{name}: every process stopped");
        assert_eq!(redis_keys(&prefix).await, 0, "{name}: no key left in Redis");
    }
    let _ = std::fs::remove_dir_all(logs);
}
