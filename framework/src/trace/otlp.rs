//! Spans to an OTLP collector, as OTLP/HTTP JSON, from a thread of their own.
//!
//! A request's span is handed over a bounded queue and never waited for: when the collector is
//! slow or gone, spans beyond the queue are dropped and counted ([`export_stats`]), and requests
//! go on as fast as before. Batches of up to [`BATCH`] spans leave at least once a second.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

use super::TraceContext;
use crate::error::RpcError;

/// The standard variable for the collector's base URL (`http://127.0.0.1:4318`): spans go to
/// its `/v1/traces`.
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The standard variable for the traces URL itself, used as given; it wins over [`OTLP_ENDPOINT`].
pub const OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";

/// Spans waiting for the exporter thread; beyond it they are dropped.
const QUEUE: usize = 8192;
/// Spans per request to the collector.
const BATCH: usize = 512;
/// How long a batch may wait to fill.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the collector has to take a connection, and then a batch.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What a span stood for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SpanKind {
    /// A request a service answered.
    Server,
}

/// One finished span.
#[derive(Debug, Clone)]
pub(crate) struct SpanRecord {
    pub(crate) service: String,
    /// `{service}.{endpoint}`.
    pub(crate) name: String,
    pub(crate) kind: SpanKind,
    pub(crate) context: TraceContext,
    pub(crate) parent: Option<TraceContext>,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    /// The reply's status, and its error code when it failed.
    pub(crate) status: u16,
    pub(crate) code: Option<String>,
    /// Escaped already (see [`crate::RequestContext::correlation_id`]).
    pub(crate) correlation_id: String,
}

/// What the exporter has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Spans the collector took.
    pub exported: u64,
    /// Spans dropped: the queue was full, or the collector refused or missed their batch.
    pub dropped: u64,
    /// Batches that did not reach the collector.
    pub failed_batches: u64,
}

#[derive(Default)]
struct Counts {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed_batches: AtomicU64,
}

struct Exporter {
    spans: SyncSender<SpanRecord>,
    counts: &'static Counts,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// Whether spans are being exported: a request records its span only then.
pub fn exporting() -> bool {
    EXPORTER.get().is_some()
}

/// Hands a finished span to the exporter, when there is one, without waiting.
pub(crate) fn record(span: SpanRecord) {
    if !span.context.sampled() {
        return;
    }
    if let Some(exporter) = EXPORTER.get() {
        match exporter.spans.try_send(span) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                exporter.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What the exporter has done, when one is installed.
pub fn export_stats() -> Option<ExportStats> {
    let counts = EXPORTER.get()?.counts;
    Some(ExportStats {
        exported: counts.exported.load(Ordering::Relaxed),
        dropped: counts.dropped.load(Ordering::Relaxed),
        failed_batches: counts.failed_batches.load(Ordering::Relaxed),
    })
}

/// Installs the exporter as the environment says: [`OTLP_TRACES_ENDPOINT`], or [`OTLP_ENDPOINT`]
/// with `/v1/traces`; answers whether one was installed (neither set: none, and nothing is
/// recorded). Every binary here calls it at its start, as [`ServiceBuilder::run`] does; once an
/// exporter is installed, it answers `true` and changes nothing.
///
/// [`ServiceBuilder::run`]: crate::ServiceBuilder::run
pub fn export_from_env() -> Result<bool, RpcError> {
    if exporting() {
        return Ok(true);
    }
    let given = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let url = match (given(OTLP_TRACES_ENDPOINT), given(OTLP_ENDPOINT)) {
        (Some(traces), _) => traces,
        (None, Some(base)) => format!("{}/v1/traces", base.trim().trim_end_matches('/')),
        (None, None) => return Ok(false),
    };
    export_to(url.trim())?;
    Ok(true)
}

/// Installs the exporter, sending to the OTLP/HTTP traces URL `url` (`http://host:4318/v1/traces`).
/// Once per process: a second call is refused. Only `http://` is spoken; a collector elsewhere is
/// reached through a local one (the OpenTelemetry Collector's usual place, beside the service).
pub fn export_to(url: &str) -> Result<(), RpcError> {
    let shown = crate::escape::escape(url, 200);
    let parsed = url::Url::parse(url)
        .map_err(|error| RpcError::config_explained(format!("OTLP endpoint {shown:?}"), error))?;
    if parsed.scheme() != "http" {
        return Err(RpcError::config(format!(
            "OTLP endpoint {shown:?}: only http:// is spoken (send to a local collector)"
        )));
    }
    let host = parsed.host_str().unwrap_or_default().to_string();
    let port = parsed.port_or_known_default().unwrap_or(4318);
    if host.is_empty() {
        return Err(RpcError::config(format!("OTLP endpoint {shown:?} names no host")));
    }
    let target = Target { host, port, path: parsed.path().to_string(), url: parsed };
    let (spans, queue) = std::sync::mpsc::sync_channel(QUEUE);
    let counts: &'static Counts = Box::leak(Box::default());
    EXPORTER
        .set(Exporter { spans, counts })
        .map_err(|_| RpcError::config("an OTLP exporter is installed already"))?;
    std::thread::Builder::new()
        .name("natsrpc-otlp".to_string())
        .spawn(move || export(queue, target, counts))
        .map_err(|error| RpcError::config_explained("could not start the OTLP exporter", error))?;
    tracing::info!(endpoint = %shown, "exporting spans over OTLP");
    Ok(())
}

struct Target {
    /// As the `Host` header writes it (an IPv6 address in brackets).
    host: String,
    port: u16,
    path: String,
    url: url::Url,
}

fn export(queue: Receiver<SpanRecord>, target: Target, counts: &Counts) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut failing = false;
    loop {
        let flush_at = std::time::Instant::now() + FLUSH_EVERY;
        let mut closed = false;
        while batch.len() < BATCH {
            match queue.recv_timeout(flush_at.saturating_duration_since(std::time::Instant::now())) {
                Ok(span) => batch.push(span),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let spans = batch.len() as u64;
            match post(&target, &body(&batch)) {
                Ok(()) => {
                    counts.exported.fetch_add(spans, Ordering::Relaxed);
                    if failing {
                        tracing::info!("the OTLP collector takes spans again");
                    }
                    failing = false;
                }
                Err(error) => {
                    counts.failed_batches.fetch_add(1, Ordering::Relaxed);
                    counts.dropped.fetch_add(spans, Ordering::Relaxed);
                    // Said once per streak, not once a second while the collector is away.
                    if !failing {
                        tracing::warn!(%error, "could not export spans over OTLP; dropping them until it can");
                    }
                    failing = true;
                }
            }
            batch.clear();
        }
        if closed {
            return;
        }
    }
}

/// One POST of `body`, answered 2xx.
fn post(target: &Target, body: &[u8]) -> std::io::Result<()> {
    use std::io::{Read, Write};
    // The URL resolves its own host, an IPv6 literal in brackets included.
    let address = target.url.socket_addrs(|| Some(target.port))?.into_iter().next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the collector's host has no address")
    })?;
    let mut stream = std::net::TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.host,
        target.port,
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    // The status line is all that counts; it comes first.
    let mut answer = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut answer[read..])?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let status = std::str::from_utf8(&answer[..read]).unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    if status.starts_with("HTTP/1.") && code.starts_with('2') {
        Ok(())
    } else {
        let line = crate::escape::escape(status.lines().next().unwrap_or_default(), 64).into_owned();
        Err(std::io::Error::other(format!("the collector answered {line:?}")))
    }
}

/// A batch as an OTLP `ExportTraceServiceRequest` in JSON: a resource per service.
fn body(batch: &[SpanRecord]) -> Vec<u8> {
    use serde_json::{Value, json};
    let text = |key: &str, value: &str| json!({"key": key, "value": {"stringValue": value}});
    let nanos =
        |at: SystemTime| at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos()).to_string();
    let mut services: Vec<(&str, Vec<Value>)> = Vec::new();
    for span in batch {
        let mut attributes = vec![
            text("rpc.system", "natsrpc"),
            text("rpc.service", &span.service),
            text("rpc.method", span.name.rsplit('.').next().unwrap_or_default()),
            json!({"key": "natsrpc.status", "value": {"intValue": span.status.to_string()}}),
            text("natsrpc.correlation_id", &span.correlation_id),
        ];
        if let Some(code) = &span.code {
            attributes.push(text("natsrpc.code", &crate::escape::escape(code, 64)));
        }
        let kind = match span.kind {
            SpanKind::Server => 2,
        };
        // Server errors are the span's; a refusal (4xx) is the caller's and leaves it unset.
        let status = if span.status >= 500 {
            json!({"code": 2, "message": span.code.as_deref().map(|c| crate::escape::escape(c, 64)).unwrap_or_default()})
        } else {
            json!({"code": 0})
        };
        let mut entry = json!({
            "traceId": span.context.trace_id(),
            "spanId": span.context.span_id(),
            "name": span.name,
            "kind": kind,
            "startTimeUnixNano": nanos(span.start),
            "endTimeUnixNano": nanos(span.end),
            "attributes": attributes,
            "status": status,
        });
        if let (Some(parent), Some(map)) = (span.parent, entry.as_object_mut()) {
            map.insert("parentSpanId".to_string(), Value::String(parent.span_id()));
        }
        match services.iter_mut().find(|(service, _)| *service == span.service) {
            Some((_, spans)) => spans.push(entry),
            None => services.push((&span.service, vec![entry])),
        }
    }
    let resources: Vec<Value> = services
        .into_iter()
        .map(|(service, spans)| {
            json!({
                "resource": {"attributes": [text("service.name", service)]},
                "scopeSpans": [{"scope": {"name": "natsrpc", "version": env!("CARGO_PKG_VERSION")}, "spans": spans}],
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "resourceSpans": resources })).unwrap_or_default()
}
