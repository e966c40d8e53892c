//! Endpoint groups, subjects of their own and queue groups per endpoint (as the NATS Services API
//! has them), over a real nats-server with two instances: each request is answered once, by the
//! right endpoint, except where the endpoint asks every instance; `$SRV.INFO` says where each
//! endpoint listens.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use natsrpc::testing::NatsServer;
use natsrpc::{Client, EndpointOptions, RequestContext, Service, ServiceBuilder, ServiceError, State};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate)]
struct List {}
natsrpc::request!(List => String, service = "catalog", endpoint = "list");

#[derive(Serialize, Deserialize, Validate)]
struct Reindex {}
natsrpc::request!(Reindex => String, service = "catalog", endpoint = "reindex", group = "catalog.admin");

#[derive(Serialize, Deserialize, Validate)]
struct Health {}
natsrpc::request!(Health => String, service = "catalog", endpoint = "health", subject = "health.catalog");

#[derive(Serialize, Deserialize, Validate)]
struct Count {}
natsrpc::request!(Count => String, service = "catalog", endpoint = "count");

#[derive(Serialize, Deserialize, Validate)]
struct Whoami {}
natsrpc::request!(Whoami => String, service = "catalog", endpoint = "whoami", group = "instances");

/// Each answers with its endpoint's name and the instance's: who answered is what is tested.
async fn answer(State(instance): State<&'static str>, ctx: RequestContext) -> Result<String, ServiceError> {
    Ok(format!("{} by {instance}", ctx.subject()))
}
async fn list(s: State<&'static str>, ctx: RequestContext, _: List) -> Result<String, ServiceError> {
    answer(s, ctx).await
}
async fn reindex(s: State<&'static str>, ctx: RequestContext, _: Reindex) -> Result<String, ServiceError> {
    answer(s, ctx).await
}
async fn health(s: State<&'static str>, ctx: RequestContext, _: Health) -> Result<String, ServiceError> {
    answer(s, ctx).await
}
async fn count(s: State<&'static str>, ctx: RequestContext, _: Count) -> Result<String, ServiceError> {
    answer(s, ctx).await
}
async fn whoami(s: State<&'static str>, ctx: RequestContext, _: Whoami) -> Result<String, ServiceError> {
    answer(s, ctx).await
}

fn catalog(instance: &'static str) -> ServiceBuilder<&'static str> {
    Service::builder("catalog", "1.0.0")
        .state(instance)
        .receivers(2)
        .endpoint(list)
        .endpoint(reindex)
        .endpoint(health)
        .endpoint_with(count, EndpointOptions::new().queue_group("counters"))
        .endpoint_with(whoami, EndpointOptions::new().no_queue_group())
}

async fn info(nats: &natsrpc::async_nats::Client, id: &str) -> serde_json::Value {
    let reply = nats.request(format!("$SRV.INFO.catalog.{id}"), "".into()).await.unwrap();
    serde_json::from_slice(&reply.payload).unwrap()
}

async fn stats_of(nats: &natsrpc::async_nats::Client, id: &str) -> natsrpc::ServiceStats {
    let reply = nats.request(format!("$SRV.STATS.catalog.{id}"), "".into()).await.unwrap();
    serde_json::from_slice(&reply.payload).unwrap()
}

#[tokio::test]
async fn each_endpoint_listens_where_its_contract_says_and_is_answered_once() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let one = catalog("one").start(&nats).await.unwrap();
    let two = catalog("two").start(&nats).await.unwrap();
    let client = Client::new(nats.clone());

    const CALLS: usize = 20;
    for _ in 0..CALLS {
        assert!(client.call(&List {}).await.unwrap().starts_with("catalog.list by "));
        assert!(client.call(&Reindex {}).await.unwrap().starts_with("catalog.admin.reindex by "));
        assert!(client.call(&Health {}).await.unwrap().starts_with("health.catalog by "));
        assert!(client.call(&Count {}).await.unwrap().starts_with("catalog.count by "));
    }
    // In no queue group, every instance answers, once each.
    let answers = client.request_many(&Whoami {}, 10, Duration::from_millis(500)).await.unwrap();
    let mut who: Vec<String> = answers.into_iter().map(Result::unwrap).collect();
    who.sort();
    assert_eq!(who, ["instances.whoami by one", "instances.whoami by two"]);
    // A subject under the service's with no endpoint is still answered 404.
    let unknown = nats.request("catalog.nothing", "{}".into()).await.unwrap();
    assert_eq!(natsrpc::headers::reply_status(unknown.headers.as_ref()), 404);

    // Each request was handled once: the two instances' counts add up to the calls.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (a, b) = (stats_of(&nats, one.id()).await, stats_of(&nats, two.id()).await);
    for endpoint in ["list", "reindex", "health", "count"] {
        let handled: u64 = [&a, &b]
            .iter()
            .flat_map(|s| s.endpoints.iter().filter(|e| e.name == endpoint))
            .map(|e| e.num_requests)
            .sum();
        assert_eq!(handled, CALLS as u64, "{endpoint}");
    }

    let described = info(&nats, one.id()).await;
    let endpoints = described["endpoints"].as_array().unwrap();
    let listens = |name: &str| {
        let e = endpoints.iter().find(|e| e["name"] == name).unwrap();
        (
            e["subject"].as_str().unwrap().to_string(),
            e.get("queue_group").and_then(|q| q.as_str()).map(str::to_string),
        )
    };
    assert_eq!(listens("list"), ("catalog.list".into(), Some("q".into())));
    assert_eq!(listens("reindex"), ("catalog.admin.reindex".into(), Some("q".into())));
    assert_eq!(listens("health"), ("health.catalog".into(), Some("q".into())));
    assert_eq!(listens("count"), ("catalog.count".into(), Some("counters".into())));
    assert_eq!(listens("whoami"), ("instances.whoami".into(), None));

    // Stopped, an instance no longer answers on any of its subjects.
    one.stop(Duration::from_secs(2)).await.unwrap();
    let answers = client.request_many(&Whoami {}, 10, Duration::from_millis(300)).await.unwrap();
    assert_eq!(answers.len(), 1);
    for _ in 0..5 {
        assert!(client.call(&Health {}).await.unwrap().ends_with("by two"));
        assert!(client.call(&Count {}).await.unwrap().ends_with("by two"));
    }
    two.stop(Duration::from_secs(2)).await.unwrap();
}

#[derive(Serialize, Deserialize, Validate)]
struct Wild {}
natsrpc::request!(Wild => String, service = "catalog", endpoint = "wild", subject = "catalog.*");
async fn wild(_: Wild) -> Result<String, ServiceError> {
    Ok(String::new())
}

#[derive(Serialize, Deserialize, Validate)]
struct Srv {}
natsrpc::request!(Srv => String, service = "catalog", endpoint = "srv", subject = "$SRV.PING");
async fn srv(_: Srv) -> Result<String, ServiceError> {
    Ok(String::new())
}

#[derive(Serialize, Deserialize, Validate)]
struct Twin {}
natsrpc::request!(Twin => String, service = "catalog", endpoint = "twin", subject = "catalog.list");
async fn twin(_: Twin) -> Result<String, ServiceError> {
    Ok(String::new())
}

#[test]
fn subjects_and_queue_groups_that_cannot_work_are_refused_when_the_service_is_built() {
    let refused = |builder: ServiceBuilder<&'static str>| match natsrpc::Dispatcher::new(builder) {
        Ok(_) => panic!("accepted"),
        Err(error) => error.to_string(),
    };
    let base = || Service::builder("catalog", "1.0.0").state("x").endpoint(list);
    assert!(refused(base().endpoint(wild)).contains("without wildcards"));
    assert!(refused(base().endpoint(srv)).contains("$SRV"));
    assert!(refused(base().endpoint(twin)).contains("share the subject catalog.list"));
    let spaced = EndpointOptions::new().queue_group("two words");
    assert!(refused(base().endpoint_with(count, spaced)).contains("queue group"));
}
