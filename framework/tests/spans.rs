//! One tracing span per request, with the service, endpoint, correlation id, outcome and duration.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use natsrpc::{CallOptions, Client};
use support::*;

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// current_thread: the service's tasks run on this thread, under this thread's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn each_request_has_a_span_with_its_outcome() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("natsrpc=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (_server, nats) = private_nats().await;
    let _service = shop("a").start(&nats).await.unwrap();
    let client = Client::new(nats);
    client.call_with(&valid_order(), CallOptions::new().correlation_id("trace-ok")).await.unwrap();
    let mut invalid = valid_order();
    invalid.items.clear();
    client.call_with(&invalid, CallOptions::new().correlation_id("trace-bad").unchecked()).await.unwrap_err();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = |id: &str| log.lines().find(|l| l.contains(id) && l.contains("handled")).map(str::to_string);
    let ok = line("trace-ok").unwrap_or_else(|| panic!("no span for trace-ok in:\n{log}"));
    for field in
        ["service=shop", "endpoint=place_order", "correlation_id=trace-ok", "outcome=ok", "duration_us="]
    {
        assert!(ok.contains(field), "{field} missing from {ok}");
    }
    let bad = line("trace-bad").unwrap_or_else(|| panic!("no span for trace-bad in:\n{log}"));
    assert!(bad.contains("outcome=validation_failed"), "{bad}");
}
