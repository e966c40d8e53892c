//! The HTTP API answers exactly as the NATS services do: every checked-in sample of every endpoint
//! gives the same status and the same envelope on both, errors and violation paths included.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use natsrpc::testing::NatsServer;
use natsrpc::{Dispatcher, ServiceBuilder};
use stack::testing::parity;
use tower::ServiceExt;

fn no_faults() -> Arc<faults::Faults> {
    Arc::new(faults::Faults::none())
}

fn ecommerce() -> ServiceBuilder<impl Send + Sync + 'static> {
    let store = ecommerce::domain::MemoryStore::with_catalog(1000, 1000);
    ecommerce::service(Arc::new(ecommerce::domain::Shop::new(store, no_faults())))
}

fn analytics() -> ServiceBuilder<impl Send + Sync + 'static> {
    let store = analytics::domain::MemoryStore::new(analytics::contracts::RETENTION_MS, 1);
    analytics::service(Arc::new(analytics::domain::Analytics::new(store, no_faults())))
}

fn fileproc() -> ServiceBuilder<impl Send + Sync + 'static> {
    let store = fileproc::domain::MemoryStore::default();
    fileproc::service(Arc::new(fileproc::domain::FileProcessor::new(store, no_faults())))
}

#[tokio::test]
async fn every_sample_gets_the_same_answer_over_http_and_over_nats() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let _on_nats = (
        ecommerce().start(&nats).await.unwrap(),
        analytics().start(&nats).await.unwrap(),
        fileproc().start(&nats).await.unwrap(),
    );
    let app = http_api::app(vec![
        Dispatcher::new(ecommerce()).unwrap(),
        Dispatcher::new(analytics()).unwrap(),
        Dispatcher::new(fileproc()).unwrap(),
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let compared = parity::http_against_nats(&nats, &base).await.unwrap();
    assert_eq!(compared, 36, "18 endpoints (all but the overview), a valid and an invalid sample each");
}

#[tokio::test]
async fn msgpack_unknown_endpoints_oversized_bodies_stats_and_health() {
    let app = http_api::app(vec![Dispatcher::new(ecommerce()).unwrap()]);

    let order = ecommerce::payloads::Payloads::new(1, 1000).create_order(ecommerce::payloads::Size::Small);
    let request = Request::post("/ecommerce/create_order")
        .header("content-type", "application/msgpack")
        .body(Body::from(rmp_serde::to_vec_named(&order).unwrap()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/msgpack");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let envelope: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(envelope["data"]["order_id"], order.order_id);

    for (path, code) in [("/ecommerce/explode", "unknown_endpoint"), ("/billing/charge", "unknown_endpoint")]
    {
        let request =
            Request::post(path).header("content-type", "application/json").body(Body::from("{}")).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let envelope: serde_json::Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(envelope["error"]["code"], code);
    }

    let big = Body::from(vec![b' '; http_api::MAX_BODY_BYTES + 1]);
    let request = Request::post("/ecommerce/create_order")
        .header("content-type", "application/json")
        .body(big)
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let envelope: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(envelope["error"]["kind"], "payload_too_large");

    let stats = app.clone().oneshot(Request::get("/stats").body(Body::empty()).unwrap()).await.unwrap();
    let stats: serde_json::Value =
        serde_json::from_slice(&stats.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let create =
        stats[0]["endpoints"].as_array().unwrap().iter().find(|e| e["name"] == "create_order").unwrap();
    assert_eq!(create["num_requests"], 1, "the order (the oversized body never reached it): {create}");
    assert!(create["data"]["average_validation_time"].as_u64().is_some(), "{create}");

    let health = app.oneshot(Request::get("/health").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let body: serde_json::Value =
        serde_json::from_slice(&health.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok", "services": ["ecommerce"]}));
}

/// What the HTTP surface refuses itself (an unknown service, a body too large) comes back as the
/// pipeline's refusals do: in the codec the request named, with its correlation id; a
/// `Content-Type` that is not text is a 415 that quotes it escaped.
#[tokio::test]
async fn the_surfaces_own_refusals_keep_the_callers_codec_and_correlation_id() {
    let app = http_api::app(vec![Dispatcher::new(ecommerce()).unwrap()]);
    let refused = |path: &str, body: Body| {
        Request::post(path)
            .header("content-type", "application/msgpack")
            .header(natsrpc::headers::CORRELATION_ID, "caller-7")
            .body(body)
            .unwrap()
    };
    let unknown = refused("/billing/charge", Body::from(vec![0x80]));
    let too_large = refused("/ecommerce/create_order", Body::from(vec![0x80; http_api::MAX_BODY_BYTES + 1]));
    for (request, status, kind) in [(unknown, 404, "unknown_endpoint"), (too_large, 413, "payload_too_large")]
    {
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()["content-type"], "application/msgpack");
        assert_eq!(response.headers()[natsrpc::headers::CORRELATION_ID], "caller-7");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let envelope: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(envelope["error"]["kind"], kind, "{envelope}");
    }

    let mut not_text = Request::post("/ecommerce/restock").body(Body::from("{}")).unwrap();
    // Bytes past ASCII are allowed in an HTTP header (obs-text), and are no text natsrpc speaks.
    let value = axum::http::HeaderValue::from_bytes(b"application/json\xff\xfe").unwrap();
    not_text.headers_mut().insert("content-type", value);
    let response = app.oneshot(not_text).await.unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let envelope: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let message = envelope["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("unsupported Content-Type \"application/json\u{fffd}"), "{message}");
}
