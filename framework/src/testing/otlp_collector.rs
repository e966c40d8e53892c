//! A collector of OTLP/HTTP JSON spans on a free port, for tests of what a service exports.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One span as a collector received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedSpan {
    /// The `service.name` of its resource.
    pub service: String,
    /// Such as `ecommerce.get_order_overview`.
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// The caller's span, when it had one.
    pub parent_span_id: Option<String>,
    /// The reply's status (`natsrpc.status`).
    pub status: u16,
    /// When it started, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u128,
    /// When it ended, in nanoseconds since the Unix epoch.
    pub end_unix_nanos: u128,
}

impl CollectedSpan {
    /// How long it took.
    pub fn duration(&self) -> Duration {
        let nanos = self.end_unix_nanos.saturating_sub(self.start_unix_nanos);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Takes `POST /v1/traces` (OTLP/HTTP JSON) and keeps the spans; stops when dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let collector = natsrpc::testing::OtlpCollector::start().await?;
/// natsrpc::trace::export_to(&collector.url())?;
/// // ... calls ...
/// let spans = collector.wait_for(3, std::time::Duration::from_secs(5)).await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OtlpCollector {
    address: std::net::SocketAddr,
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
    serving: JoinHandle<()>,
}

impl OtlpCollector {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let serving = tokio::spawn(accept(listener, Arc::clone(&spans)));
        Ok(Self { address, spans, serving })
    }

    /// Its traces URL, for [`crate::trace::export_to`].
    pub fn url(&self) -> String {
        format!("http://{}/v1/traces", self.address)
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<CollectedSpan> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The spans received, once there are at least `count` of them or `within` has passed.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<CollectedSpan> {
        let until = tokio::time::Instant::now() + within;
        while self.spans().len() < count && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.spans()
    }

    /// Stops listening: exports fail from here on, as with a collector that has gone away.
    pub fn stop(&self) {
        self.serving.abort();
    }
}

impl Drop for OtlpCollector {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

async fn accept(listener: TcpListener, spans: Arc<Mutex<Vec<CollectedSpan>>>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let spans = Arc::clone(&spans);
        tokio::spawn(async move {
            let received = tokio::time::timeout(Duration::from_secs(5), read_post(&mut stream)).await;
            let status = match received {
                Ok(Some(body)) => match parse(&body) {
                    Some(batch) => {
                        spans.lock().unwrap_or_else(PoisonError::into_inner).extend(batch);
                        "200 OK"
                    }
                    None => "400 Bad Request",
                },
                _ => "400 Bad Request",
            };
            let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
            let _ = stream.write_all(answer.as_bytes()).await;
        });
    }
}

/// The body of one POST with a `Content-Length`.
async fn read_post(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())?;
            while received.len() < end + 4 + length {
                let read = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
                received.extend_from_slice(&chunk[..read]);
            }
            return Some(received[end + 4..end + 4 + length].to_vec());
        }
        let read = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        received.extend_from_slice(&chunk[..read]);
    }
}

fn parse(body: &[u8]) -> Option<Vec<CollectedSpan>> {
    let request: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |value: &serde_json::Value| value.as_str().map(str::to_string);
    let mut spans = Vec::new();
    for resource in request.get("resourceSpans")?.as_array()? {
        let service = resource["resource"]["attributes"]
            .as_array()?
            .iter()
            .find(|a| a["key"] == "service.name")
            .and_then(|a| text(&a["value"]["stringValue"]))?;
        for scope in resource["scopeSpans"].as_array()? {
            for span in scope["spans"].as_array()? {
                let status = span["attributes"]
                    .as_array()?
                    .iter()
                    .find(|a| a["key"] == "natsrpc.status")
                    .and_then(|a| a["value"]["intValue"].as_str()?.parse().ok())
                    .unwrap_or(0);
                spans.push(CollectedSpan {
                    service: service.clone(),
                    name: text(&span["name"])?,
                    trace_id: text(&span["traceId"])?,
                    span_id: text(&span["spanId"])?,
                    parent_span_id: text(&span["parentSpanId"]),
                    status,
                    start_unix_nanos: span["startTimeUnixNano"].as_str()?.parse().ok()?,
                    end_unix_nanos: span["endTimeUnixNano"].as_str()?.parse().ok()?,
                });
            }
        }
    }
    Some(spans)
}
