//! Every stack of the checked-in config starts from it, is ready, answers a real request through
//! its whole path, and stops by PID leaving no process and no Redis key behind. NATS stacks run
//! against a private nats-server and HTTP stacks on free ports, so that stacks started by hand
//! on the config's own ports are left alone.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bench_runner::config::{BenchmarkConfig, Transport};
use bench_runner::system::private_brokers::{Private, on_private_brokers};
use bench_runner::system::process::alive;
use bench_runner::system::stacks::{RunningStack, StartOptions};
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
        // A validation-off control's binaries are a release build of their own (minutes to make,
        // scripts/run-benchmarks.sh makes them, and the runner proves which build answers): here,
        // its processes are started from the usual binaries, which is what its wiring is about.
        if spec.unvalidated_control_of.is_some() {
            for process in &mut spec.processes {
                process.command[0] = process.command[0].trim_start_matches("unvalidated/").to_string();
            }
        }
        // A cluster is the runner's, on free ports, whatever the test; its stream is made for the
        // shop's events.
        let mut options = options.clone();
        let cluster = match spec.nats_cluster {
            Some(_) => {
                let dir = logs.join(format!("{name}-brokers"));
                let private = on_private_brokers(name, &spec, &dir, Private::default()).await.unwrap();
                spec = private.spec.clone();
                options.env.push(("ORDER_EVENTS".into(), "on".into()));
                Some(private)
            }
            None => None,
        };
        // A secured variant keeps its own address: its brokers are its own, started with it.
        if spec.secured_variant_of.is_none() && cluster.is_none() {
            spec.url = match spec.transport {
                Transport::Nats => nats_server.url(),
                Transport::Http => format!("http://127.0.0.1:{}", stack::testing::free_port().unwrap()),
            };
        }
        let running = RunningStack::start(name, &spec, &options).await.unwrap();
        let pids: Vec<u32> = running.members().iter().map(|m| m.pid()).collect();
        assert_eq!(pids.len(), spec.processes.iter().map(|p| p.instances as usize).sum::<usize>());
        let brokers = running.members().iter().filter(|m| m.broker).count();
        assert_eq!(brokers, spec.processes.iter().filter(|p| p.listens.is_some()).count(), "{name}");
        assert_eq!(running.pids().len(), pids.len() - brokers, "{name}: its brokers are not its own CPU");

        let answer: serde_json::Value = match (spec.transport, &spec.echo_subject) {
            _ if spec.secured_variant_of.is_some() => {
                // Over TLS, with the run's password: the runner's own client.
                let client =
                    bench_runner::target::client::StackClient::connect(&spec, Duration::from_secs(5))
                        .await
                        .unwrap();
                let (status, body) =
                    client.send("ecommerce.restock", restock.to_string().into()).await.unwrap();
                assert_eq!(status, 200, "{name}");
                serde_json::from_slice(&body).unwrap()
            }
            (Transport::Nats, Some(subject)) => {
                let nats = natsrpc::connect(&spec.url).await.unwrap();
                let reply = nats.request(subject.clone(), restock.to_string().into()).await.unwrap();
                serde_json::from_slice(&reply.payload).unwrap()
            }
            (Transport::Nats, None) => {
                let nats = spec.connect_nats().await.unwrap();
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

        if cluster.is_some() {
            let servers = running.members().iter().filter(|m| m.is_broker("nats")).count();
            assert_eq!(servers, 3, "{name}: a server per node");
            // The shop's events in a stream that every server keeps.
            let nats = spec.connect_nats().await.unwrap();
            let stream = bench_runner::outage::order_stream().unwrap();
            let info = nats.request(format!("$JS.API.STREAM.INFO.{stream}"), "".into()).await.unwrap();
            let info: serde_json::Value = serde_json::from_slice(&info.payload).unwrap();
            assert_eq!(info["config"]["num_replicas"], 3, "{name}: {info}");
            assert_eq!(info["cluster"]["replicas"].as_array().map(Vec::len), Some(2), "{name}: {info}");
        }

        let prefix = running.prefix.clone();
        running.stop(Duration::from_secs(10)).await.unwrap();
        assert!(pids.iter().all(|pid| !alive(*pid)), "{name}: every process stopped");
        assert_eq!(redis_keys(&prefix).await, 0, "{name}: no key left in Redis");
    }
    // The certificates and password loading the config made for the secured variants.
    bench_runner::config::run_secrets::RunSecrets::remove();
    let _ = std::fs::remove_dir_all(logs);
}

/// The load's own HTTP client (keep-alive connections, one request at a time each) against a
/// real HTTP stack placed on a CPU: answers, many at once over reused connections, and refusal
/// once it stopped.
#[tokio::test]
async fn the_load_generators_http_client_sends_reuses_and_sees_a_stack_go() {
    use bench_runner::target::client::{SendError, StackClient};

    let config = BenchmarkConfig::load(&workspace().join("config/benchmark-config.yaml")).unwrap();
    let logs = std::env::temp_dir().join(format!("natsrpc-stacks-{}", nuid::next()));
    let options = StartOptions { bin_dir: bin_dir(), ..StartOptions::beside_this_binary(&logs).unwrap() };
    let mut spec = config.stacks["http-memory"].clone();
    spec.url = format!("http://127.0.0.1:{}", stack::testing::free_port().unwrap());
    // Placed on CPU 0 (`cpus`), which every machine has: the process the runner watches is the
    // stack's own, on that CPU.
    spec.processes[0].cpus = Some("0".into());
    let running = RunningStack::start("http-memory", &spec, &options).await.unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", running.pids()[0])).unwrap();
    assert!(status.lines().any(|line| line == "Cpus_allowed_list:\t0"), "{status}");
    assert!(status.lines().any(|line| line == "Name:\thttp-redis"), "taskset became the stack's process");
    let client = std::sync::Arc::new(StackClient::connect(&spec, Duration::from_secs(5)).await.unwrap());

    let restock = br#"{"sku":"SKU-00002","quantity":3}"#;
    let (status, body) = client.send("ecommerce.restock", restock.to_vec().into()).await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let invalid =
        client.send("ecommerce.restock", br#"{"sku":"x","quantity":0}"#.to_vec().into()).await.unwrap();
    assert_eq!(invalid.0, 400);
    let unknown = client.send("ecommerce.nothing", "{}".into()).await.unwrap();
    assert_eq!(unknown.0, 404);

    // 64 at once, then 64 more over the connections the first ones left open.
    for _ in 0..2 {
        let sends: Vec<_> = (0..64)
            .map(|_| {
                let client = std::sync::Arc::clone(&client);
                tokio::spawn(async move { client.send("ecommerce.restock", restock.to_vec().into()).await })
            })
            .collect();
        for send in sends {
            assert_eq!(send.await.unwrap().unwrap().0, 200);
        }
    }
    let level = client.ask(&ecommerce::contracts::GetStock { sku: "SKU-00002".into() }).await.unwrap();
    assert_eq!(level.sku, "SKU-00002");

    running.stop(Duration::from_secs(10)).await.unwrap();
    let gone = client.send("ecommerce.restock", restock.to_vec().into()).await.unwrap_err();
    assert!(matches!(gone, SendError::NoResponders | SendError::Transport(_)), "{gone:?}");
    let _ = std::fs::remove_dir_all(logs);
}

/// An HTTP stack's API as two instances behind the runner's HAProxy: both serve the stack's url,
/// each on an address of its own, and one killed loses no request sent after it went (a refused
/// connection is tried on the other); started again, it takes its share back.
#[tokio::test]
async fn http_instances_behind_the_balancer_share_the_url_and_outlive_one_of_them() {
    use bench_runner::target::client::StackClient;

    let config = BenchmarkConfig::load(&workspace().join("config/benchmark-config.yaml")).unwrap();
    let logs = std::env::temp_dir().join(format!("natsrpc-stacks-{}", nuid::next()));
    let options = StartOptions { bin_dir: bin_dir(), ..StartOptions::beside_this_binary(&logs).unwrap() };
    let mut spec = config.stacks["http-memory"].clone();
    spec.url = format!("http://127.0.0.1:{}", stack::testing::free_port().unwrap());
    spec.processes[0].instances = 2;
    assert!(spec.behind_balancer(&spec.processes[0]), "a serving process of two instances");
    let mut running = RunningStack::start("http-memory", &spec, &options).await.unwrap();
    let roles: Vec<&str> = running.members().iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["api-1", "api-2", "balancer"]);
    assert_eq!(running.pids().len(), 2, "the balancer is not the stack's own CPU");
    let cfg = std::fs::read_to_string(logs.join("http-memory-balancer.cfg")).unwrap();
    let own: Vec<String> = running.members().iter().filter_map(|m| m.address().map(str::to_string)).collect();
    assert_eq!(own.len(), 2);
    assert!(own.iter().all(|address| cfg.contains(address.as_str())), "{cfg}");

    // Each instance answers on its own address, with state of its own (memory): a restock
    // through the balancer lands on one of them, the next on the other.
    let http = reqwest::Client::new();
    let levels = || async {
        let mut levels = Vec::new();
        for address in &own {
            let url = format!("http://{address}");
            let sku = serde_json::json!({"sku": "SKU-00003"});
            let (status, body) =
                stack::testing::parity::over_http(&http, &url, "ecommerce", "get_stock", &sku).await.unwrap();
            assert_eq!(status, 200, "{address}: {body}");
            levels.push(body["data"]["available"].as_u64().unwrap());
        }
        levels
    };
    let before = levels().await;
    let restock = serde_json::json!({"sku": "SKU-00003", "quantity": 1});
    for _ in 0..4 {
        let (status, _) =
            stack::testing::parity::over_http(&http, &spec.url, "ecommerce", "restock", &restock)
                .await
                .unwrap();
        assert_eq!(status, 200);
    }
    let after = levels().await;
    assert_eq!(
        (after[0] - before[0], after[1] - before[1]),
        (2, 2),
        "round-robin: two restocks each ({before:?} then {after:?})"
    );
    // One instance gone: every request still answered, by the other.
    running.kill("api-1").unwrap();
    let client = StackClient::connect(&spec, Duration::from_secs(5)).await.unwrap();
    for i in 0..20 {
        let (status, body) = client.send("ecommerce.restock", restock.to_string().into()).await.unwrap();
        assert_eq!(status, 200, "request {i} with api-1 down: {}", String::from_utf8_lossy(&body));
    }
    running.restart("api-1").await.unwrap();
    let again = format!("http://{}", own[0]);
    let (status, _) =
        stack::testing::parity::over_http(&http, &again, "ecommerce", "restock", &restock).await.unwrap();
    assert_eq!(status, 200, "api-1 serves again on its own address");
    let pids: Vec<u32> = running.members().iter().map(|m| m.pid()).collect();
    running.stop(Duration::from_secs(10)).await.unwrap();
    assert!(pids.iter().all(|pid| !alive(*pid)), "the instances and the balancer stopped");
    let _ = std::fs::remove_dir_all(logs);
}
