//! Requests over a real nats-server: codecs, validation, malformed input, errors, bounds.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use natsrpc::{CallOptions, Client, Codec, ErrorKind, RpcError};
use support::*;

#[tokio::test]
async fn round_trip_in_json_and_msgpack_with_correlation_id() {
    let (_server, nats) = private_nats().await;
    let service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(nats.clone());

    let placed = client.call(&valid_order()).await.unwrap();
    assert_eq!((placed.total_cents, placed.item_count), (3499, 2));

    let placed = client
        .call_with(&valid_order(), CallOptions::new().codec(Codec::MsgPack).correlation_id("order-42"))
        .await
        .unwrap();
    assert_eq!(placed.total_cents, 3499);
    assert_eq!(placed.correlation_id, "order-42", "the caller's correlation id reaches the handler");

    // A success reply is the bare envelope in the request's codec.
    let body = rmp_serde::to_vec_named(&valid_order()).unwrap();
    let headers = [("Content-Type", "application/msgpack"), ("X-Correlation-Id", "c-1")];
    let reply = raw(&nats, "shop.place_order", &headers, body).await;
    assert!(reply.headers.as_ref().is_none_or(|h| h.is_empty()), "{:?}", reply.headers);
    let envelope: serde_json::Value = rmp_serde::from_slice(&reply.payload).unwrap();
    assert_eq!(envelope["ok"], true);
    assert_eq!(envelope["data"]["total_cents"], 3499);

    // An error reply says its codec and carries the correlation id that finds the log line.
    let mut invalid = valid_order();
    invalid.items.clear();
    let reply = raw(&nats, "shop.place_order", &headers, rmp_serde::to_vec_named(&invalid).unwrap()).await;
    assert_eq!(header(&reply, "Content-Type"), Some("application/msgpack"));
    assert_eq!(header(&reply, "X-Correlation-Id"), Some("c-1"));

    // A body without Content-Type that starts with `{` is JSON.
    let reply = raw(&nats, "shop.place_order", &[], serde_json::to_vec(&valid_order()).unwrap()).await;
    assert_eq!(json(&reply)["data"]["item_count"], 2);
    service.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn every_violation_comes_back_with_its_path_and_the_handler_never_runs() {
    let (_server, nats) = private_nats().await;
    let service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(nats.clone());

    let mut order = valid_order();
    order.customer.shipping_address.country = "DEU".into(); // nested struct
    order.customer.billing_address = Some(Address { country: "D".into(), postal_code: "1".into() }); // Option
    order.items[1].quantity = 0; // Vec element
    order.customer.email = "nope".into();

    for codec in [Codec::Json, Codec::MsgPack] {
        let error = client.call_with(&order, CallOptions::new().codec(codec)).await.unwrap_err();
        let RpcError::Validation { violations, .. } = error else {
            panic!("expected a validation error, got {error:?}")
        };
        let found: Vec<(&str, &str)> =
            violations.iter().map(|v| (v.path.as_str(), v.code.as_str())).collect();
        assert_eq!(
            found,
            [
                ("customer.billing_address.country", "length"),
                ("customer.billing_address.postal_code", "length"),
                ("customer.email", "email"),
                ("customer.shipping_address.country", "length"),
                ("items[1].quantity", "range"),
            ]
        );
        let quantity = &violations[4];
        assert_eq!(quantity.params["min"], 1);
        assert_eq!(quantity.params["max"], 100);
        assert!(!quantity.message.is_empty());
    }

    // The raw reply carries the Services API error headers.
    let reply = raw(&nats, "shop.place_order", &[], serde_json::to_vec(&order).unwrap()).await;
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), Some("400"));
    assert_eq!(header(&reply, "Nats-Service-Error"), Some("5 validation errors"));
    let body = json(&reply);
    assert_eq!((body["ok"].clone(), body["error"]["kind"].clone()), (false.into(), "validation".into()));

    let shop_state_orders = client.call(&valid_order()).await.unwrap();
    assert_eq!(shop_state_orders.instance, "a");
    service.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn malformed_input_is_a_clear_400_saying_where() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();

    // Wrong type deep inside, in JSON: the path and the position are named.
    let mut order = serde_json::to_value(valid_order()).unwrap();
    order["items"][1]["quantity"] = "two".into();
    let reply =
        raw(&nats, "shop.place_order", &[("Content-Type", "application/json")], order.to_string()).await;
    let error = &json(&reply)["error"];
    assert_eq!(error["kind"], "malformed_payload");
    assert_eq!(error["status"], 400);
    assert_eq!(error["path"], "items[1].quantity");
    assert!(error["message"].as_str().unwrap().contains("line 1 column"), "{error}");
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), Some("400"));

    // Truncated JSON and bytes that are not JSON at all.
    for body in [&b"{\"customer\": {"[..], b"{not json", b"\xff\xfe\x00"] {
        let reply =
            raw(&nats, "shop.place_order", &[("Content-Type", "application/json")], body.to_vec()).await;
        assert_eq!(json(&reply)["error"]["kind"], "malformed_payload");
    }

    // Wrong type in MessagePack; the error comes back in MessagePack.
    order["items"][1]["quantity"] = (-5).into();
    let body = rmp_serde::to_vec_named(&order).unwrap();
    let reply = raw(&nats, "shop.place_order", &[("Content-Type", "application/msgpack")], body).await;
    let envelope: serde_json::Value = rmp_serde::from_slice(&reply.payload).unwrap();
    assert_eq!(envelope["error"]["kind"], "malformed_payload");
    assert_eq!(envelope["error"]["path"], "items[1].quantity");

    // Garbage claimed to be MessagePack.
    let reply =
        raw(&nats, "shop.place_order", &[("Content-Type", "application/msgpack")], b"\xc1\xc1\xc1".to_vec())
            .await;
    let envelope: serde_json::Value = rmp_serde::from_slice(&reply.payload).unwrap();
    assert_eq!(envelope["error"]["kind"], "malformed_payload");

    // Deep nesting is refused, not a stack overflow, and the service keeps serving.
    let deep = format!("{{\"customer\":{}{}}}", "[".repeat(50_000), "]".repeat(50_000));
    let reply = raw(&nats, "shop.place_order", &[], deep).await;
    assert_eq!(json(&reply)["error"]["kind"], "malformed_payload");
    assert!(Client::new(nats).call(&valid_order()).await.is_ok());
}

#[tokio::test]
async fn wrong_content_type_is_415_in_json() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();
    let reply = raw(&nats, "shop.place_order", &[("Content-Type", "text/xml")], "<order/>").await;
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), Some("415"));
    let error = &json(&reply)["error"];
    assert_eq!(error["kind"], "unsupported_content_type");
    assert!(error["message"].as_str().unwrap().contains("text/xml"));
}

#[tokio::test]
async fn unknown_endpoint_is_404_not_silence() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();
    let error = Client::new(nats.clone()).call(&Missing {}).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(404), Some("unknown_endpoint")));

    let reply = raw(&nats, "shop.place_order.extra", &[], "{}").await;
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), Some("404"));
}

#[tokio::test]
async fn business_errors_carry_the_handlers_code() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();
    let error = Client::new(nats).call(&Reserve { sku: "A-1".into() }).await.unwrap_err();
    let RpcError::Remote(error) = error else { panic!("expected a remote error, got {error:?}") };
    assert_eq!((error.status, error.kind, error.code.as_str()), (409, ErrorKind::Business, "out_of_stock"));
    assert_eq!(error.message, "sku A-1 is out of stock");
    assert_eq!(error.path.as_deref(), Some("A-1"));
}

#[tokio::test]
async fn a_panicking_handler_fails_only_its_request_and_leaks_nothing() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(nats);
    let error = client
        .call_with(&Explode { secret: "hunter2".into() }, CallOptions::new().correlation_id("boom-1"))
        .await
        .unwrap_err();
    let RpcError::Remote(error) = error else { panic!("expected a remote error, got {error:?}") };
    assert_eq!((error.status, error.kind), (500, ErrorKind::Internal));
    assert!(!error.message.contains("hunter2") && !error.message.contains("boom with"), "{}", error.message);
    assert!(error.message.contains("boom-1"), "the correlation id lets the caller find the log line");
    // Still serving.
    assert_eq!(client.call(&valid_order()).await.unwrap().item_count, 2);
}

#[tokio::test]
async fn a_slow_handler_gets_a_504_and_a_slow_reply_a_client_timeout() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").timeout(Duration::from_millis(200)).start(&nats).await.unwrap();
    let client = Client::new(nats.clone()).with_timeout(Duration::from_secs(5));
    let error = client.call(&Sleep { millis: 2_000 }).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(504), Some("timeout")));

    let error = client
        .call_with(&Sleep { millis: 150 }, CallOptions::new().timeout(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert!(matches!(error, RpcError::Timeout { ref subject, .. } if subject == "shop.sleep"), "{error:?}");
}

#[tokio::test]
async fn no_responders_is_its_own_error() {
    let (_server, nats) = private_nats().await;
    let error = Client::new(nats).call(&valid_order()).await.unwrap_err();
    assert!(
        matches!(error, RpcError::NoResponders { ref subject } if subject == "shop.place_order"),
        "{error:?}"
    );
}

#[tokio::test]
async fn past_the_in_flight_bound_requests_are_refused_at_once() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").max_in_flight(2).start(&nats).await.unwrap();
    let client = Client::new(nats.clone());

    let calls = concurrently(&client, 6, Sleep { millis: 2_000 });
    let mut ok = 0;
    let mut overloaded = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(error) if error.status() == Some(503) => overloaded += 1,
            Err(error) => panic!("unexpected {error:?}"),
        }
    }
    assert_eq!((ok, overloaded), (2, 4));
    // The bound is per endpoint and the places come back.
    assert!(client.call(&Sleep { millis: 1 }).await.is_ok());
}

#[tokio::test]
async fn oversized_requests_get_413_and_oversized_replies_an_error_not_truncation() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").max_payload(1024).start(&nats).await.unwrap();
    let mut order = valid_order();
    order.customer.name = "x".repeat(2_000);
    let client = Client::new(nats);
    // Unchecked: the client would refuse the overlong name itself before the service saw its size.
    let error = client.call_with(&order, CallOptions::new().unchecked()).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(413), Some("payload_too_large")));

    // The private server's max_payload is 1 MiB: a 2 MiB reply becomes a clear error.
    let error = client.call(&Pad { bytes: 2 << 20 }).await.unwrap_err();
    assert_eq!(error.status(), Some(500));
    assert!(error.to_string().contains("max_payload"), "{error}");
    assert_eq!(client.call(&Pad { bytes: 1000 }).await.unwrap().len(), 1000);
}

#[tokio::test]
async fn two_instances_share_the_load_in_a_queue_group() {
    let (_server, nats) = private_nats().await;
    let a = shop("a").start(&nats).await.unwrap();
    let b = shop("b").start(&nats).await.unwrap();
    let client = Client::new(nats);
    let mut by_instance = std::collections::HashMap::new();
    for _ in 0..200 {
        let placed = client.call(&valid_order()).await.unwrap();
        *by_instance.entry(placed.instance).or_insert(0) += 1;
    }
    assert_eq!(by_instance.values().sum::<i32>(), 200, "each request answered once");
    assert!(by_instance.get("a").copied().unwrap_or(0) > 20, "{by_instance:?}");
    assert!(by_instance.get("b").copied().unwrap_or(0) > 20, "{by_instance:?}");
    assert_ne!(a.id(), b.id());
}

#[tokio::test]
async fn handlers_that_wait_run_concurrently() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(nats.clone());
    let calls = concurrently(&client, 8, Sleep { millis: 3_000 });
    // All eight inside the handler at once; a serial service would show one.
    assert_eq!(wait_for_in_flight(&nats, "shop", "sleep", 8).await, 8);
    for call in calls {
        assert!(call.await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn large_requests_are_served_and_validated_like_small_ones() {
    let (_server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(nats);
    let mut order = valid_order();
    let options = (0..2_000).map(|i| (format!("option-{i}"), "x".repeat(20))).collect();
    order.items[0].options = Some(options); // ~60 KiB: past the in-place limit
    assert!(serde_json::to_vec(&order).unwrap().len() > 16 * 1024);
    assert_eq!(client.call(&order).await.unwrap().item_count, 2);
    let small = order.items[1].clone();
    order.items.extend(std::iter::repeat_n(small, 99)); // 101 items, one over the limit
    let error = client.call(&order).await.unwrap_err();
    let RpcError::Validation { violations, .. } = error else { panic!("{error:?}") };
    assert_eq!((violations[0].path.as_str(), violations[0].code.as_str()), ("items", "length"));

    // Over the server's max_payload (1 MiB): refused by the client, naming the limit.
    order.items = vec![order.items[0].clone(); 20];
    let error = client.call(&order).await.unwrap_err();
    assert!(matches!(error, RpcError::PayloadTooLarge(_)), "{error:?}");
    assert!(error.to_string().contains("1048576"), "{error}");
}

/// What the typed client puts on the wire: the deadline always; `Content-Type` only where the body
/// would not tell its codec by itself (a JSON body that is not an object or array); a correlation id only when the call has one to carry or
/// several attempts to tie together. The service answers the same either way.
#[tokio::test]
async fn the_typed_client_sends_only_the_headers_a_call_needs() {
    use futures::StreamExt;

    let (_server, nats) = private_nats().await;
    let service = shop("a").start(&nats).await.unwrap();
    // A second subscriber on the endpoint's subject (no queue group) sees every request as sent.
    let mut seen = nats.subscribe("shop.place_order").await.unwrap();
    nats.flush().await.unwrap();
    let client = Client::new(nats.clone());
    let mut sent = async |options: CallOptions| {
        let placed = client.call_with(&valid_order(), options).await.unwrap();
        assert_eq!(placed.total_cents, 3499);
        let request = tokio::time::timeout(Duration::from_secs(5), seen.next()).await.unwrap().unwrap();
        let names = |name: &str| header(&request, name).map(str::to_string);
        (names("Content-Type"), names("X-Correlation-Id"), names("X-Deadline-Ms"))
    };

    let (content_type, correlation_id, deadline) = sent(CallOptions::new()).await;
    assert_eq!((content_type, correlation_id), (None, None), "a JSON object tells its codec");
    assert_eq!(deadline.as_deref(), Some("5000"));

    // A MessagePack map starts with a byte no JSON body starts with: it tells its codec too.
    let (content_type, correlation_id, _) = sent(CallOptions::new().codec(Codec::MsgPack)).await;
    assert_eq!((content_type, correlation_id), (None, None));

    let (_, correlation_id, _) = sent(CallOptions::new().correlation_id("order-7")).await;
    assert_eq!(correlation_id.as_deref(), Some("order-7"));

    // A JSON body that is not an object or array would be read as MessagePack without the header.
    let words = natsrpc::Service::builder("words", "1.0.0").endpoint(shout).start(&nats).await.unwrap();
    let mut seen_words = nats.subscribe("words.shout").await.unwrap();
    nats.flush().await.unwrap();
    assert_eq!(client.call(&Word("hi".into())).await.unwrap(), "HI");
    let request = tokio::time::timeout(Duration::from_secs(5), seen_words.next()).await.unwrap().unwrap();
    assert_eq!(header(&request, "Content-Type"), Some("application/json"));
    words.stop(Duration::from_secs(5)).await.unwrap();

    let retried = CallOptions::new().retry(natsrpc::RetryPolicy::exponential(3, Duration::from_millis(10)));
    let (_, correlation_id, _) = sent(retried).await;
    assert!(correlation_id.is_some_and(|id| !id.is_empty()), "retries share one id");
    service.stop(Duration::from_secs(5)).await.unwrap();
}

/// A request that is a bare JSON string.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Word(String);

impl validator::Validate for Word {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        Ok(())
    }
}
natsrpc::request!(Word => String, service = "words", endpoint = "shout");

async fn shout(word: Word) -> Result<String, natsrpc::ServiceError> {
    Ok(word.0.to_uppercase())
}
