//! The HTTP+RabbitMQ stack, as processes against the shared RabbitMQ (each test with queues of its
//! own): every sample answered as over NATS; a request whose worker dies is taken over by another
//! worker and acknowledged once; a worker killed mid-request gives a clear 504 within the timeout;
//! no worker at all gives a clear 503 at once; the hostile-input corpus is answered on every
//! endpoint, every request acknowledged, and the workers keep serving; the archive's events wait
//! in its queue while its database is down.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use http_api::client::{HttpTransport, Routes};
use http_rabbitmq::{Broker, DEFAULT_AMQP_URL, queue_name};
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use natsrpc::Client;
use natsrpc::testing::{NatsServer, ServiceProcess};
use serde_json::Value;
use stack::Hosting;
use stack::redis::RedisPool;
use stack::testing::{checks, hostile, parity, spawn_http};

const BINARY: &str = env!("CARGO_BIN_EXE_http-rabbitmq");

/// One deployment's names: its queues and its Redis keys.
struct Deployment {
    prefix: String,
}

impl Deployment {
    fn new() -> Self {
        Self { prefix: format!("natsrpc-test-{}", nuid::next()) }
    }

    fn env<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env = vec![
            ("QUEUE_PREFIX", self.prefix.as_str()),
            ("REDIS_PREFIX", self.prefix.as_str()),
            ("ECOMMERCE_STOCK", "1000"),
        ];
        env.extend_from_slice(extra);
        env
    }

    async fn gateway(&self, timeout_ms: &str) -> (ServiceProcess, String) {
        spawn_http(BINARY, &["gateway"], &self.env(&[("GATEWAY_TIMEOUT_MS", timeout_ms)])).await.unwrap()
    }

    /// A worker, once its queues exist.
    async fn worker(&self, extra: &[(&str, &str)]) -> ServiceProcess {
        self.worker_of("fileproc", extra).await
    }

    /// A worker, once it consumes `service`'s queue (the last it declares of those it serves).
    async fn worker_of(&self, service: &str, extra: &[(&str, &str)]) -> ServiceProcess {
        let before = self.queue(service).await.1;
        let worker = ServiceProcess::spawn_with(BINARY, &["worker"], &self.env(extra)).unwrap();
        for _ in 0..400 {
            if self.queue(service).await.1 > before {
                return worker;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the worker did not start consuming {service} within 10 s");
    }

    /// (ready messages, consumers) of a service's queue; (0, 0) when it does not exist yet.
    async fn queue(&self, service: &str) -> (u32, u32) {
        let connection = Broker::new(DEFAULT_AMQP_URL).connect("test probe").await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let name = queue_name(&self.prefix, service);
        let counts = match channel.queue_declare(name.as_str().into(), passive, FieldTable::default()).await {
            Ok(queue) => (queue.message_count(), queue.consumer_count()),
            Err(_) => (0, 0),
        };
        let _ = connection.close(200, "probe done".into()).await;
        counts
    }

    async fn clear(&self) {
        RedisPool::connect("redis://127.0.0.1:6379", 1, &self.prefix).await.unwrap().clear().await.unwrap();
        let connection = Broker::new(DEFAULT_AMQP_URL).connect("test clean-up").await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        for service in stack::SERVICES {
            let name = queue_name(&self.prefix, service);
            let _ = channel.queue_delete(name.as_str().into(), Default::default()).await;
        }
        for consumer in [stack::links::ANALYTICS, stack::links::ARCHIVE] {
            let events = http_rabbitmq::events::queue(&self.prefix, consumer);
            let _ = channel.queue_delete(events.as_str().into(), Default::default()).await;
        }
    }
}

async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap())
}

fn restock() -> Value {
    serde_json::json!({"sku": "SKU-00001", "quantity": 5})
}

#[tokio::test]
async fn every_sample_gets_the_answer_it_gets_over_nats() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let _services = Hosting { skus: 1000, units: 1000, ..Hosting::default() }.start_on(&nats).await.unwrap();

    let deployment = Deployment::new();
    let _workers = [deployment.worker(&[]).await, deployment.worker(&[]).await];
    let (gateway, base) = deployment.gateway("5000").await;
    let compared = parity::http_against_nats(&nats, &base).await.unwrap();
    assert_eq!(compared, 36, "18 endpoints (all but the overview), a valid and an invalid sample each");
    assert!(gateway.terminate().await.unwrap().success(), "a clean stop on SIGTERM");
    deployment.clear().await;
}

#[tokio::test]
async fn a_request_whose_worker_dies_is_answered_by_another_and_acknowledged_once() {
    let deployment = Deployment::new();
    // The first worker is the test itself, so that it knows when it holds the request.
    let connection = Broker::new(DEFAULT_AMQP_URL).connect("doomed worker").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let queue = http_rabbitmq::declare_queue(&channel, &deployment.prefix, "ecommerce").await.unwrap();
    let mut doomed = channel
        .basic_consume(
            queue.as_str().into(),
            "doomed".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let (_gateway, base) = deployment.gateway("10000").await;
    let started = Instant::now();
    let call = tokio::spawn({
        let base = base.clone();
        async move { post(&base, "/ecommerce/restock", &restock()).await }
    });
    let held = doomed.next().await.unwrap().unwrap();
    assert!(!held.redelivered);
    // Dies holding it: the broker gets the request back, unacknowledged.
    drop(doomed);
    connection.close(320, "worker died".into()).await.unwrap();

    let _survivor = deployment.worker(&[]).await;
    let (status, envelope) = call.await.unwrap();
    assert_eq!((status, &envelope["data"]["sku"]), (200, &Value::from("SKU-00001")), "{envelope}");
    assert!(started.elapsed() < Duration::from_secs(10), "answered within the timeout");
    assert_eq!(envelope["data"]["available"], 1005, "restocked once");

    // Acknowledged once: nothing left in the queue, and the worker's channel is still open
    // (acknowledging twice would have closed it).
    assert_eq!(deployment.queue("ecommerce").await.0, 0);
    let (status, envelope) = post(&base, "/ecommerce/restock", &restock()).await;
    assert_eq!((status, &envelope["data"]["available"]), (200, &Value::from(1010)));
    deployment.clear().await;
}

#[tokio::test]
async fn a_worker_killed_mid_request_gives_a_clear_timeout_and_no_stale_work() {
    let deployment = Deployment::new();
    // Every request waits 30 s in this worker: it is surely mid-request when killed.
    let mut slow = deployment.worker(&[("FAULT_EXTRA_LATENCY_MS", "30000")]).await;
    let (_gateway, base) = deployment.gateway("2000").await;

    let started = Instant::now();
    let call = tokio::spawn({
        let base = base.clone();
        async move { post(&base, "/ecommerce/restock", &restock()).await }
    });
    while deployment.queue("ecommerce").await.0 > 0 || started.elapsed() < Duration::from_millis(200) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    slow.kill();

    let (status, envelope) = call.await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(status, 504, "{envelope}");
    assert_eq!(envelope["error"]["kind"], "timeout");
    assert_eq!(envelope["error"]["message"], "no worker answered ecommerce.restock within 2000 ms");
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(5), "{elapsed:?}");

    // The request expired with its caller's patience: a new worker does not run it again.
    let _fresh = deployment.worker(&[]).await;
    let (status, envelope) = post(&base, "/ecommerce/restock", &restock()).await;
    assert_eq!((status, &envelope["data"]["available"]), (200, &Value::from(1005)), "restocked once only");
    assert_eq!(deployment.queue("ecommerce").await.0, 0);
    deployment.clear().await;
}

#[tokio::test]
async fn no_worker_at_all_is_a_clear_503_at_once() {
    let deployment = Deployment::new();
    let (_gateway, base) = deployment.gateway("5000").await;
    let started = Instant::now();
    let (status, envelope) = post(&base, "/ecommerce/restock", &restock()).await;
    assert_eq!(status, 503, "{envelope}");
    assert_eq!(envelope["error"]["kind"], "unavailable");
    let message = envelope["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("no worker serves ecommerce"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused without waiting for the timeout");

    let (status, envelope) = post(&base, "/billing/charge", &restock()).await;
    assert_eq!((status, &envelope["error"]["code"]), (404, &Value::from("unknown_endpoint")));
}

/// Services call each other by AMQP RPC through the broker and the shop's events go through the
/// durable exchange and queue: every order counted once, overviews joined or naming the failed
/// part, jobs forwarded; with all services in two workers, and with each service in workers of
/// its own.
#[tokio::test]
async fn calls_and_events_cross_the_broker_with_services_together_or_apart() {
    let together = Deployment::new();
    let events = [("ORDER_EVENTS", "on"), ("ECOMMERCE_SKUS", "50")];
    let (gateway, base) = together.gateway("5000").await;
    let workers = [together.worker(&events).await, together.worker(&events).await];
    let client = Client::over(HttpTransport::new(Routes::all_at(&base)).unwrap());
    checks::orders_counted_once(&client, 41).await.unwrap();
    checks::overview_gathers_its_parts(&client, 42).await.unwrap();
    checks::jobs_reach_analytics(&client, 43).await.unwrap();
    for process in workers.into_iter().chain([gateway]) {
        assert!(process.terminate().await.unwrap().success());
    }
    together.clear().await;

    let apart = Deployment::new();
    let (gateway, base) = apart.gateway("5000").await;
    let mut workers = Vec::new();
    for service in stack::SERVICES {
        workers.push(apart.worker_of(service, &[events[0], events[1], ("SERVICES", service)]).await);
    }
    let client = Client::over(HttpTransport::new(Routes::all_at(&base)).unwrap());
    checks::orders_counted_once(&client, 51).await.unwrap();
    checks::overview_gathers_its_parts(&client, 52).await.unwrap();
    checks::jobs_reach_analytics(&client, 53).await.unwrap();
    for process in workers.into_iter().chain([gateway]) {
        assert!(process.terminate().await.unwrap().success());
    }
    apart.clear().await;
}

#[tokio::test]
async fn every_endpoint_answers_every_hostile_case_and_the_workers_keep_serving() {
    let deployment = Deployment::new();
    let mut worker = deployment.worker(&[]).await;
    let (gateway, base) = deployment.gateway("10000").await;
    let cases = hostile::corpus().unwrap();
    let checked = hostile::replay_over_http(&cases, &base)
        .await
        .unwrap_or_else(|failures| panic!("{} failures:\n{}", failures.len(), failures.join("\n")));
    assert!(checked > 500, "{checked} requests");
    assert!(worker.exited().is_none(), "the worker is still up");
    for service in stack::SERVICES {
        assert_eq!(deployment.queue(service).await, (0, 1), "{service}: nothing left waiting, one consumer");
    }
    assert!(gateway.terminate().await.unwrap().success());
    assert!(worker.terminate().await.unwrap().success());
    deployment.clear().await;
}

/// The archive consumes a durable queue of its own: while its database is down, analytics gets
/// every event and the archive's wait in the queue (returned after each failure); once the
/// database is back, each order is archived once.
#[tokio::test]
async fn the_archive_catches_up_on_its_queue_once_its_database_is_back() {
    use archive::{Archive, ArchivedEvent};
    use ecommerce::domain::EventSink;
    use http_rabbitmq::events::{self, AmqpEvents};
    use stack::testing::archived::{archived, counted, counting, placed};
    use std::sync::Arc;

    let deployment = Deployment::new();
    let broker = Broker::new(DEFAULT_AMQP_URL);
    let mut postgres = archive::server::PostgresServer::start().unwrap();
    let archive = Arc::new(Archive::connect(&postgres.url()).await.unwrap());
    let consumers = vec![stack::links::ANALYTICS, stack::links::ARCHIVE];
    let publisher = AmqpEvents::connect(&broker, &deployment.prefix, consumers).await.unwrap();
    let (analytics, count) = counting();
    let archiving = stack::links::archive_follower(Arc::clone(&archive));
    let following = [
        events::follow(&broker, &deployment.prefix, stack::links::ANALYTICS, analytics).await.unwrap(),
        events::follow(&broker, &deployment.prefix, stack::links::ARCHIVE, archiving).await.unwrap(),
    ];
    let orders: Vec<String> = (0..40).map(|i| format!("ord_on_rabbitmq_{i:03}")).collect();
    for order in &orders[..10] {
        publisher.publish(placed(order, "cus_rabbit")).await.unwrap();
    }
    archived(&archive, 10, Duration::from_secs(10)).await.unwrap();

    postgres.kill();
    for order in &orders[10..] {
        publisher.publish(placed(order, "cus_rabbit")).await.unwrap();
    }
    counted(&count, 40, Duration::from_secs(10)).await.expect("analytics, unaffected, counts them all");
    tokio::time::sleep(Duration::from_secs(1)).await;
    postgres.restart().unwrap();
    archived(&archive, 40, Duration::from_secs(20)).await.unwrap();
    let mut held = archive.holds(ArchivedEvent::Placed, &orders).await.unwrap();
    held.sort();
    assert_eq!(held, orders, "each order, once");
    for task in following {
        task.abort();
    }
    deployment.clear().await;
}
