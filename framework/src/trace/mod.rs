//! W3C Trace Context across services: a request's `traceparent` header (NATS or HTTP) is read at
//! the edge, each request gets a span of its own in the caller's trace, and the calls a handler
//! makes [within](crate::CallOptions::within) its request carry the trace on, as do events
//! published [within](crate::events::Publisher::publish_within) it. With an exporter installed
//! ([`export_from_env`], `OTEL_EXPORTER_OTLP_ENDPOINT`), every request's span goes to an OTLP
//! collector (Jaeger, Tempo, the OpenTelemetry Collector) as OTLP/HTTP JSON.
//!
//! ```
//! use natsrpc::trace::TraceContext;
//! let caller = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
//! let mine = caller.child();
//! assert_eq!(mine.trace_id(), caller.trace_id());
//! assert_ne!(mine.span_id(), caller.span_id());
//! assert!(mine.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
//! // What a careless or hostile caller sends is no trace: the request starts one of its own.
//! assert!(TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
//! assert!(TraceContext::parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none());
//! ```

mod otlp;

pub use otlp::{
    ExportStats, OTLP_ENDPOINT, OTLP_TRACES_ENDPOINT, export_from_env, export_stats, export_to, exporting,
};
pub(crate) use otlp::{SpanKind, SpanRecord, record};

/// One span's place in a trace, as `traceparent` carries it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl std::fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.traceparent())
    }
}

/// `traceparent`'s length in version 00.
const TRACEPARENT_LEN: usize = 55;

impl TraceContext {
    /// A `traceparent` value read strictly, as the W3C says: version 00 (or a later one, read as
    /// 00), lower-case hex, an id of neither trace nor span all zeros. Anything else is `None`,
    /// and the request starts a trace of its own.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        if bytes.len() < TRACEPARENT_LEN || !value.is_ascii() {
            return None;
        }
        let version = &value[0..2];
        // A later version may append fields after a dash; version 00 has none, and ff is invalid.
        let later = version != "00";
        if version == "ff" || (!later && bytes.len() != TRACEPARENT_LEN) {
            return None;
        }
        if later && bytes.len() > TRACEPARENT_LEN && bytes[TRACEPARENT_LEN] != b'-' {
            return None;
        }
        if [2, 35, 52].iter().any(|&i| bytes[i] != b'-') {
            return None;
        }
        let trace_id: [u8; 16] = hex_bytes(&value[3..35])?;
        let span_id: [u8; 8] = hex_bytes(&value[36..52])?;
        let [flags] = hex_bytes::<1>(&value[53..55])?;
        hex_bytes::<1>(version)?;
        let zero = |b: &[u8]| b.iter().all(|b| *b == 0);
        if zero(&trace_id) || zero(&span_id) {
            return None;
        }
        Some(Self { trace_id, span_id, flags })
    }

    /// The first span of a new trace, sampled.
    pub fn new_root() -> Self {
        Self { trace_id: nonzero(), span_id: nonzero(), flags: 1 }
    }

    /// A span of the same trace, under this one.
    pub fn child(&self) -> Self {
        Self { trace_id: self.trace_id, span_id: nonzero(), flags: self.flags }
    }

    /// The trace's id: 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// This span's id: 16 lower-case hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }

    /// Whether the trace's first service chose to record it (flag 01).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The `traceparent` header that makes a callee's span a child of this one.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id(), self.span_id(), self.flags)
    }
}

/// Random bytes, not all zero (which the W3C reserves for "none").
fn nonzero<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = rand::random();
        if bytes.iter().any(|b| *b != 0) {
            return bytes;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// `text` as `N` bytes, when it is exactly 2N lower-case hex digits.
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let text = text.as_bytes();
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_reads_back_as_written() {
        let context = TraceContext::parse(SAMPLE).unwrap_or_else(TraceContext::new_root);
        assert_eq!(context.traceparent(), SAMPLE);
        assert!(context.sampled());
        let later = TraceContext::parse(&format!("cc{}-what-comes-later", &SAMPLE[2..]));
        assert_eq!(later.map(|c| c.trace_id()), Some(context.trace_id()));
        let unsampled = TraceContext::parse(&SAMPLE.replace("-01", "-00")).map(|c| c.sampled());
        assert_eq!(unsampled, Some(false));
    }

    #[test]
    fn anything_else_is_no_trace() {
        let bad = [
            String::new(),
            SAMPLE.to_uppercase(),
            SAMPLE.replace("00-4bf", "ff-4bf"),
            format!("{SAMPLE}-extra"),
            format!("{SAMPLE}x"),
            SAMPLE.replace('-', "_"),
            SAMPLE.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
            SAMPLE.replace("00f067aa0ba902b7", &"0".repeat(16)),
            SAMPLE.replace("4bf9", "4bfg"),
            SAMPLE.replace("4bf9", "4bf\u{e9}"),
            format!("cc{}x-later", &SAMPLE[2..]),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1".to_string(),
        ];
        for value in bad {
            assert_eq!(TraceContext::parse(&value), None, "{value:?}");
        }
    }

    #[test]
    fn a_child_is_in_the_same_trace_with_a_span_of_its_own() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!((child.trace_id(), child.sampled()), (root.trace_id(), true));
        assert_ne!(child.span_id(), root.span_id());
        assert_eq!(TraceContext::parse(&child.traceparent()), Some(child));
    }
}
