//! One trace of `get_order_overview`'s fan-out over HTTP: `traceparent` in the HTTP headers both
//! ways, the services calling each other through the HTTP API, their spans collected over OTLP.
//! (The exporter is the process's own: this file is its only test.)

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http_api::client::{HttpTransport, Routes};
use natsrpc::Client;
use natsrpc::testing::OtlpCollector;
use stack::testing::checks;
use stack::{Hosting, Links, StoreKind};

#[tokio::test]
async fn an_overview_and_its_parts_are_one_trace_over_http() {
    let collector = OtlpCollector::start().await.unwrap();
    natsrpc::trace::export_to(&collector.url()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let over_http = || Client::over(HttpTransport::new(Routes::all_at(&base)).unwrap());
    let hosting = Hosting { store: StoreKind::Memory, skus: 50, ..Hosting::default() };
    let hosted = hosting.host(Links { peers: Some(over_http()), events: None }).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(http_api::serve(listener, http_api::app(hosted.dispatchers), None, async {
        let _ = stopped.await;
    }));
    let tree = checks::overview_is_one_trace(&over_http(), &collector, 41).await.unwrap();
    println!("{tree}");
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}
