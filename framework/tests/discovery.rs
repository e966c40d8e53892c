//! The NATS Services API (ADR-32): PING, INFO and STATS in all three forms, with counts.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use natsrpc::{CallOptions, Client, Codec, RpcError};
use support::*;

async fn ask(nats: &async_nats::Client, subject: &str) -> serde_json::Value {
    let reply = nats.request(subject.to_string(), "".into()).await.expect("a Services API reply");
    serde_json::from_slice(&reply.payload).expect("JSON")
}

/// Replies to a subject answered by several instances, collected for a short while.
async fn ask_all(nats: &async_nats::Client, subject: &str) -> Vec<serde_json::Value> {
    use futures::StreamExt;
    let inbox = nats.new_inbox();
    let mut replies = nats.subscribe(inbox.clone()).await.unwrap();
    nats.publish_with_reply(subject.to_string(), inbox, "".into()).await.unwrap();
    let mut found = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(300), replies.next()).await {
        found.push(serde_json::from_slice(&message.payload).unwrap());
    }
    found
}

#[tokio::test]
async fn ping_info_and_stats_answer_in_all_three_forms() {
    let (_server, nats) = private_nats().await;
    let service = shop("a").start(&nats).await.unwrap();
    let id = service.id().to_string();

    for verb in ["PING", "INFO", "STATS"] {
        for subject in [format!("$SRV.{verb}"), format!("$SRV.{verb}.shop"), format!("$SRV.{verb}.shop.{id}")]
        {
            let reply = ask(&nats, &subject).await;
            assert_eq!(
                reply["type"],
                format!("io.nats.micro.v1.{}_response", verb.to_lowercase()),
                "{subject}"
            );
            assert_eq!((reply["name"].as_str(), reply["id"].as_str()), (Some("shop"), Some(id.as_str())));
            assert_eq!(reply["version"], "1.2.3");
            assert_eq!(reply["metadata"]["team"], "tests");
        }
    }

    let info = ask(&nats, "$SRV.INFO.shop").await;
    assert_eq!(info["description"], "A shop for tests");
    let endpoints: Vec<(&str, &str, &str)> = info["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["name"].as_str().unwrap(), e["subject"].as_str().unwrap(), e["queue_group"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        endpoints,
        [
            ("place_order", "shop.place_order", "q"),
            ("sleep", "shop.sleep", "q"),
            ("explode", "shop.explode", "q"),
            ("reserve", "shop.reserve", "q"),
            ("pad", "shop.pad", "q"),
        ]
    );
    assert!(info["endpoints"][0]["metadata"].is_object(), "metadata is an object, never null");

    // Another service's name is not answered by this one.
    let other = nats.request("$SRV.PING.billing", "".into()).await;
    assert!(other.is_err(), "nobody is called billing");
}

#[tokio::test]
async fn stats_count_requests_errors_time_and_validation() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(nats.clone());
    for _ in 0..3 {
        client.call(&valid_order()).await.unwrap();
    }
    let mut invalid = valid_order();
    invalid.items[0].quantity = 0;
    // Sent unchecked: the client would refuse it itself, and the service would never count it.
    client.call_with(&invalid, CallOptions::new().unchecked()).await.unwrap_err();

    let stats = ask(&nats, "$SRV.STATS.shop").await;
    assert!(stats["started"].as_str().unwrap().contains('T'), "RFC 3339: {}", stats["started"]);
    let place =
        stats["endpoints"].as_array().unwrap().iter().find(|e| e["name"] == "place_order").unwrap().clone();
    assert_eq!((place["num_requests"].as_u64(), place["num_errors"].as_u64()), (Some(4), Some(1)));
    assert_eq!(place["last_error"], "400:items[0].quantity: value must be between 1 and 100");
    let total = place["processing_time"].as_u64().unwrap();
    assert!(total > 0);
    assert_eq!(place["average_processing_time"].as_u64().unwrap(), total / 4);
    let data = &place["data"];
    assert!(data["validation_time"].as_u64().unwrap() > 0);
    assert!(data["latency_us"]["p50"].as_u64().unwrap() >= 1);
    assert!(data["latency_us"]["p99"].as_u64() >= data["latency_us"]["p50"].as_u64());
    assert_eq!(data["in_flight"], 0);

    let idle = stats["endpoints"].as_array().unwrap().iter().find(|e| e["name"] == "sleep").unwrap().clone();
    assert_eq!((idle["num_requests"].as_u64(), idle["last_error"].as_str()), (Some(0), Some("")));

    // The same answer, read typed as a caller reads it, says the same and writes back the same.
    let typed: natsrpc::ServiceStats = serde_json::from_value(stats.clone()).unwrap();
    assert_eq!(typed.kind, "io.nats.micro.v1.stats_response");
    let place = typed.endpoints.iter().find(|e| e.name == "place_order").unwrap();
    assert_eq!((place.num_requests, place.num_errors), (4, 1));
    assert!(place.data.validates() && place.data.validation_time > 0);
    assert!(place.data.latency_us.p99 >= place.data.latency_us.p50);
    assert_eq!(serde_json::to_value(&typed).unwrap(), stats);
    // Another ADR-32 service's answer, with `null` where natsrpc writes objects, reads too.
    let other = serde_json::json!({"type": "io.nats.micro.v1.stats_response", "name": "go", "metadata": null,
        "endpoints": [{"name": "e", "num_requests": 2, "data": null, "last_error": null}]});
    let other: natsrpc::ServiceStats = serde_json::from_value(other).unwrap();
    assert_eq!((other.endpoints[0].num_requests, other.endpoints[0].data.validates()), (2, true));
}

#[tokio::test]
async fn every_instance_answers_the_generic_ping() {
    let (_server, nats) = private_nats().await;
    let a = shop("a").start(&nats).await.unwrap();
    let b = shop("b").start(&nats).await.unwrap();
    let mut ids: Vec<String> = ask_all(&nats, "$SRV.PING.shop")
        .await
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut expected = vec![a.id().to_string(), b.id().to_string()];
    expected.sort();
    assert_eq!(ids, expected);
}

/// The requests `place_order` has answered, from the service's own figures.
async fn placed(nats: &async_nats::Client) -> u64 {
    let stats = ask(nats, "$SRV.STATS.shop").await;
    let endpoints = stats["endpoints"].as_array().unwrap();
    endpoints.iter().find(|e| e["name"] == "place_order").unwrap()["num_requests"].as_u64().unwrap()
}

#[tokio::test]
async fn the_client_refuses_an_invalid_request_as_the_service_would_and_sends_nothing() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(nats.clone());
    let mut invalid = valid_order();
    invalid.items[0].quantity = 0;
    invalid.customer.email = "nope".into();

    let mut sent = 0;
    for codec in [Codec::Json, Codec::MsgPack] {
        let refused = client.call_with(&invalid, CallOptions::new().codec(codec)).await.unwrap_err();
        assert_eq!(placed(&nats).await, sent, "nothing went on the wire");
        let answered =
            client.call_with(&invalid, CallOptions::new().codec(codec).unchecked()).await.unwrap_err();
        sent += 1;
        assert_eq!(placed(&nats).await, sent, "sent unchecked, the service answered it");
        // The same error, whoever found it: message, paths, codes, parameters.
        let (
            RpcError::Validation { message: a, violations: x },
            RpcError::Validation { message: b, violations: y },
        ) = (&refused, &answered)
        else {
            panic!("{refused:?} / {answered:?}")
        };
        assert_eq!((a, x), (b, y));
        assert_eq!(a, "2 validation errors");
        let paths: Vec<&str> = x.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["customer.email", "items[0].quantity"]);
    }
}
