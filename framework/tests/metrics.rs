//! Prometheus metrics over a real nats-server: what a scrape shows after real calls, that the page
//! is well-formed text format, and that a hostile scraper gets a bounded, clear answer.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use natsrpc::metrics::MetricsServer;
use natsrpc::testing::NatsServer;
use natsrpc::{CallOptions, Client, EndpointOptions, Service, ServiceError};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use validator::Validate;

#[derive(Serialize, Deserialize, Validate)]
struct Weigh {
    #[validate(range(max = 100))]
    grams: u32,
    /// What the handler does: `ok`, `refuse` (a business code), `panic` or `wait`.
    then: String,
}
natsrpc::request!(Weigh => u32, service = "scales", endpoint = "weigh");

async fn weigh(request: Weigh) -> Result<u32, ServiceError> {
    match request.then.as_str() {
        "refuse" => Err(ServiceError::business(409, "too_heavy", "the scale refuses")),
        "code\"with\\odd\nchars" => Err(ServiceError::business(422, "bad\ncode\"}", "odd")),
        "panic" => panic!("the scale broke"),
        "wait" => {
            tokio::time::sleep(Duration::from_millis(600)).await;
            Ok(request.grams)
        }
        _ => Ok(request.grams),
    }
}

/// The page at `address`, as a scraper gets it: status line, headers and body.
async fn get(address: std::net::SocketAddr, request: &[u8]) -> (String, String) {
    let answer = exchange(address, request).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.to_string(), body.to_string())
}

async fn exchange(address: std::net::SocketAddr, request: &[u8]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(request).await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_string(&mut answer)).await??;
    Ok(answer)
}

async fn scrape(address: std::net::SocketAddr) -> BTreeMap<String, f64> {
    let (head, body) = get(address, b"GET /metrics HTTP/1.1\r\nHost: scales\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"), "{head}");
    assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
    well_formed(&body)
}

/// Checks the page against the text format's rules (as `promtool check metrics` would: every
/// sample under its family's `# TYPE`, label values closed and escaped, values that parse,
/// histogram buckets that only grow and end in `+Inf` equal to `_count`), and answers each
/// sample's value by its line's name and labels.
fn well_formed(page: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut family = String::new();
    let mut last_bucket: Option<(String, f64)> = None;
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            family = name.to_string();
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "stray line {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(name.starts_with(&family), "{name} outside its family {family}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}')).expect(line);
            let mut rest = inner;
            while !rest.is_empty() {
                let (label, after) = rest.split_once("=\"").expect(line);
                assert!(label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{line}");
                // The value runs to the first quote that no backslash escapes.
                let mut end = None;
                let mut escaped = false;
                for (i, c) in after.char_indices() {
                    match c {
                        _ if escaped => {
                            assert!(matches!(c, '\\' | '"' | 'n'), "bad escape in {line}");
                            escaped = false;
                        }
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        '\n' => panic!("raw line feed in {line}"),
                        _ => {}
                    }
                }
                let end = end.expect(line);
                rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
            }
        }
        if name.ends_with("_bucket") {
            let without_le = series.split(",le=").next().unwrap().to_string();
            if let Some((previous, count)) = &last_bucket
                && *previous == without_le
            {
                assert!(value >= *count, "buckets shrink at {line}");
            }
            last_bucket = Some((without_le, value));
        }
        assert!(samples.insert(series.to_string(), value).is_none(), "{series} twice");
    }
    for (series, value) in &samples {
        if series.contains("_count{") {
            let inf = series.replace("_count{", "_bucket{").replace('}', ",le=\"+Inf\"}");
            assert_eq!(samples.get(&inf), Some(value), "+Inf bucket of {series}");
        }
    }
    samples
}

fn weighing(grams: u32, then: &str) -> Weigh {
    Weigh { grams, then: then.to_string() }
}

#[tokio::test]
async fn a_scrape_counts_every_reply_by_endpoint_status_and_code() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let options = EndpointOptions::new().max_in_flight(1);
    let service =
        Service::builder("scales", "1.2.3").endpoint_with(weigh, options).start(&nats).await.unwrap();
    let metrics = MetricsServer::bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(nats.clone());

    for grams in 0..5 {
        assert_eq!(client.call(&weighing(grams, "ok")).await.unwrap(), grams);
    }
    assert_eq!(client.call(&weighing(1, "refuse")).await.unwrap_err().status(), Some(409));
    assert_eq!(client.call(&weighing(1, "panic")).await.unwrap_err().status(), Some(500));
    let odd = client.call(&weighing(1, "code\"with\\odd\nchars")).await.unwrap_err();
    assert_eq!(odd.status(), Some(422));
    let unchecked = CallOptions::new().unchecked();
    assert_eq!(client.call_with(&weighing(101, "ok"), unchecked).await.unwrap_err().status(), Some(400));
    // One waits in the handler while another is refused at the bound, and shows as in flight.
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.call(&weighing(3, "wait")).await }
    });
    let mut refused = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if let Err(error) = client.call(&weighing(2, "ok")).await {
            refused = error.status();
            break;
        }
    }
    assert_eq!(refused, Some(503));
    let during = scrape(metrics.address()).await;
    assert_eq!(during[r#"natsrpc_requests_in_flight{service="scales",endpoint="weigh"}"#], 1.0);
    assert_eq!(waiting.await.unwrap().unwrap(), 3);

    let page = scrape(metrics.address()).await;
    let line = |rest: &str| format!(r#"{{service="scales",endpoint="weigh"{rest}}}"#);
    let requests = page[&format!("natsrpc_requests_total{}", line(""))];
    let answered_ok = requests - 5.0; // refuse, panic, odd, invalid, overloaded
    assert!(answered_ok >= 6.0, "{requests} requests");
    // Each error once, by status and code; a code that is not a plain word is no label value: it
    // counts as `other`.
    let errors = [
        (409, "too_heavy"),
        (500, "internal"),
        (400, "validation_failed"),
        (503, "overloaded"),
        (422, "other"),
    ];
    for (status, code) in errors {
        let series =
            format!("natsrpc_request_errors_total{}", line(&format!(r#",status="{status}",code="{code}""#)));
        assert_eq!(page.get(&series), Some(&1.0), "{series}");
    }
    assert_eq!(page[&format!("natsrpc_request_duration_seconds_count{}", line(""))], requests);
    let slow = page[&format!("natsrpc_request_duration_seconds_bucket{}", line(r#",le="0.5""#))];
    assert!(slow < requests, "the 600 ms request lies above the 0.5 s bucket");
    assert!(page[&format!("natsrpc_request_duration_seconds_sum{}", line(""))] >= 0.6);
    assert!(page[&format!("natsrpc_validation_seconds_total{}", line(""))] > 0.0);
    assert_eq!(page[&format!("natsrpc_requests_in_flight{}", line(""))], 0.0);
    assert_eq!(page[r#"natsrpc_service_info{service="scales",version="1.2.3"}"#], 1.0);

    // A stopped service leaves the page.
    service.stop(Duration::from_secs(2)).await.unwrap();
    let after = scrape(metrics.address()).await;
    assert!(!after.keys().any(|series| series.contains(r#"service="scales""#)), "{after:?}");
    metrics.stop().await;
}

#[tokio::test]
async fn a_hostile_scraper_gets_a_bounded_clear_answer_and_no_echo() {
    let metrics = MetricsServer::bind("127.0.0.1:0").await.unwrap();
    let address = metrics.address();
    let (head, body) = get(address, b"GET /metrics/../secret?<script> HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n") && !body.contains("script"), "{head}{body}");
    let (head, _) = get(address, b"DELETE /metrics HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 405 ") && head.contains("Allow: GET, HEAD"), "{head}");
    let (head, _) = get(address, b"\x00\x01\x02 garbage\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    let mut endless = b"GET /metrics HTTP/1.1\r\nX-Fill: ".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let (head, _) = get(address, &endless).await;
    assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
    let (head, body) = get(address, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 ") && body.is_empty(), "{head}");

    // Connections that never finish their request hold at most the bound; the one beyond it is
    // closed unanswered, and the page is served again once they are gone (or time out).
    let mut idle = Vec::new();
    for _ in 0..16 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(b"GET /metr").await.unwrap();
        idle.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Closed with the request unread, the connection may be reset rather than ended.
    let beyond = exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(beyond.as_ref().is_ok_and(String::is_empty) || beyond.is_err(), "closed unanswered: {beyond:?}");
    // A client that stalls is answered 408 when its time is up.
    let mut stalled = idle.pop().unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stalled.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    drop(idle);
    drop(stalled);
    // Their places come back as their tasks see them gone (the 408's linger up to a second).
    let mut served = false;
    for _ in 0..50 {
        if exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n")
            .await
            .is_ok_and(|a| a.starts_with("HTTP/1.1 200"))
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the page is served again");
    scrape(address).await;
    metrics.stop().await;
    assert!(TcpStream::connect(address).await.is_err(), "stopped: nothing listens");
}
