//! Requests made to break the services, from arbitrary bytes: for the property tests (`cargo test`)
//! and the cargo-fuzz targets (`fuzz/`), which both drive every endpoint of the three services
//! through the real pipeline ([`natsrpc::Dispatcher`]: route, decode, validate, handle, encode,
//! build the reply's headers).
//!
//! The bytes are read as a [`Plan`]: an endpoint, a codec, a `Content-Type` and an `X-Deadline-Ms`
//! (sane or hostile), and either the endpoint's valid sample (shaped after its JSON Schema) with
//! leaves replaced by hostile values (control characters, CR/LF, NUL, huge and non-BMP strings;
//! NaN, infinities, -0, 2^64, 1e308 and 1e400), keys dropped and keys added, or the rest of the
//! bytes as the body itself. Every reply must be an envelope of its status, with header-safe
//! headers, and never a 500: with the in-memory stores and no injected faults, a 500 is a panic.

use std::sync::Arc;
use std::time::Duration;

use natsrpc::{Dispatched, Dispatcher};
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::Value;

use crate::{Hosting, Links};

/// A JSON or MessagePack value that may hold what `serde_json::Value` cannot: NaN and the
/// infinities (MessagePack only), and number tokens no `f64` holds (JSON only).
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    /// `null`.
    Null,
    /// `true`, `false`.
    Bool(bool),
    /// A signed whole number.
    Int(i64),
    /// An unsigned whole number.
    UInt(u64),
    /// A float, NaN included.
    Float(f64),
    /// A JSON number token written as is (`1e400`, `18446744073709551616`); a string in
    /// MessagePack.
    Token(&'static str),
    /// Text.
    Str(String),
    /// An array.
    Arr(Vec<Tree>),
    /// An object, keys in order.
    Map(Vec<(String, Tree)>),
}

impl From<&Value> for Tree {
    fn from(value: &Value) -> Self {
        match value {
            Value::Null => Tree::Null,
            Value::Bool(b) => Tree::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Tree::UInt(u),
                (_, Some(i), _) => Tree::Int(i),
                (_, _, f) => Tree::Float(f.unwrap_or_default()),
            },
            Value::String(s) => Tree::Str(s.clone()),
            Value::Array(items) => Tree::Arr(items.iter().map(Tree::from).collect()),
            Value::Object(map) => Tree::Map(map.iter().map(|(k, v)| (k.clone(), Tree::from(v))).collect()),
        }
    }
}

impl serde::Serialize for Tree {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Tree::Null => serializer.serialize_unit(),
            Tree::Bool(b) => serializer.serialize_bool(*b),
            Tree::Int(i) => serializer.serialize_i64(*i),
            Tree::UInt(u) => serializer.serialize_u64(*u),
            Tree::Float(f) => serializer.serialize_f64(*f),
            Tree::Token(token) => serializer.serialize_str(token),
            Tree::Str(s) => serializer.serialize_str(s),
            Tree::Arr(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Tree::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl Tree {
    /// As JSON text: NaN and the infinities as the bare words (which JSON refuses), tokens as is.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = String::new();
        self.write_json(&mut out);
        out.into_bytes()
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Tree::Float(f) if f.is_nan() => out.push_str("NaN"),
            Tree::Float(f) if f.is_infinite() => {
                out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
            }
            Tree::Token(token) => out.push_str(token),
            Tree::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Tree::Map(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(key).unwrap_or_default());
                    out.push(':');
                    value.write_json(out);
                }
                out.push('}');
            }
            leaf => out.push_str(&serde_json::to_string(leaf).unwrap_or_default()),
        }
    }

    /// As MessagePack, structs as maps.
    pub fn to_msgpack(&self) -> Vec<u8> {
        rmp_serde::to_vec(self).unwrap_or_default()
    }

    /// Nodes in pre-order.
    fn count(&self) -> usize {
        1 + match self {
            Tree::Arr(items) => items.iter().map(Tree::count).sum(),
            Tree::Map(entries) => entries.iter().map(|(_, v)| v.count()).sum(),
            _ => 0,
        }
    }

    /// The node at pre-order index `at`.
    fn node(&mut self, at: usize) -> Option<&mut Tree> {
        if at == 0 {
            return Some(self);
        }
        let mut at = at - 1;
        let children: Vec<&mut Tree> = match self {
            Tree::Arr(items) => items.iter_mut().collect(),
            Tree::Map(entries) => entries.iter_mut().map(|(_, v)| v).collect(),
            _ => return None,
        };
        for child in children {
            let size = child.count();
            if at < size {
                return child.node(at);
            }
            at -= size;
        }
        None
    }
}

/// Strings a caller can send that have broken, or could break, a header, a log line or a decoder.
pub fn hostile_strings() -> Vec<String> {
    vec![
        String::new(),
        "\r\n".into(),
        "x\r\nNats-Service-Error-Code: 200".into(),
        "\0".into(),
        "\u{1b}[2J\u{1b}[31mred".into(),
        "\u{202e}evil\u{200d}".into(),
        "😀🇩🇪".into(),
        "\u{fffd}\u{ffff}".into(),
        "\\u0000".into(),
        "a".repeat(70_000),
        "\r\n".repeat(20_000),
        "%0d%0a".into(),
        "SKU-00001".into(),
        "ord_0123456789abcdef".into(),
        "upl_0123456789abcdef".into(),
        "usr_fuzz".into(),
    ]
}

/// Numbers a caller can send that a contract's types or rules may not expect.
pub fn hostile_numbers() -> Vec<Tree> {
    vec![
        Tree::Float(f64::NAN),
        Tree::Float(f64::INFINITY),
        Tree::Float(f64::NEG_INFINITY),
        Tree::Float(-0.0),
        Tree::Float(1e308),
        Tree::Float(5e-324),
        Tree::UInt(u64::MAX),
        Tree::Int(i64::MIN),
        Tree::Int(-1),
        Tree::UInt(0),
        Tree::Token("1e400"),
        Tree::Token("18446744073709551616"),
        Tree::Token("-0"),
    ]
}

/// The `Content-Type`s a plan may send.
const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some("application/json"),
    Some("application/msgpack"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
    Some("application/\u{1b}[31m"),
    Some(""),
    Some("application/x-msgpack\0"),
];

/// The `X-Deadline-Ms`s a plan may send (as the HTTP stacks parse it: a whole number or nothing).
const DEADLINES: [Option<u64>; 5] = [None, Some(0), Some(1), Some(30_000), Some(u64::MAX)];

/// Every endpoint of the three services, with its valid sample as the shape to mutate.
#[derive(Debug, Clone)]
pub struct Targets {
    endpoints: Vec<(String, Value)>,
}

impl Targets {
    /// The endpoints and their samples.
    pub fn new() -> Self {
        let mut endpoints: Vec<(String, Value)> = super::parity::samples()
            .into_iter()
            .map(|(service, sample)| (format!("{service}.{}", sample.endpoint), sample.valid))
            .collect();
        let overview =
            serde_json::json!({"order_id": "ord_0123456789abcdef", "attachments": ["upl_0123456789abcdef"]});
        endpoints.push(("ecommerce.get_order_overview".into(), overview));
        Self { endpoints }
    }

    /// How many endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

impl Default for Targets {
    fn default() -> Self {
        Self::new()
    }
}

/// One request to make, read from arbitrary bytes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `{service}.{endpoint}`.
    pub subject: String,
    /// The `Content-Type` sent.
    pub content_type: Option<String>,
    /// The `X-Deadline-Ms` sent.
    pub deadline: Option<Duration>,
    /// The body.
    pub body: Vec<u8>,
}

impl Plan {
    /// Reads a plan from `bytes`: byte 0 picks the endpoint, byte 1 the codec, `Content-Type` and
    /// deadline, byte 2 whether the rest is the body itself or mutations of the sample (three bytes
    /// each: what, where, with what).
    pub fn from_bytes(targets: &Targets, bytes: &[u8]) -> Plan {
        let byte = |i: usize| bytes.get(i).copied().unwrap_or(0) as usize;
        let (subject, sample) = &targets.endpoints[byte(0) % targets.endpoints.len()];
        let flags = byte(1);
        let msgpack = flags & 1 == 1;
        let content_type = match (flags >> 1) % 4 {
            // Mostly the codec's own, so that decoding, validation and the handlers are reached.
            0..=2 => Some(if msgpack { "application/msgpack" } else { "application/json" }),
            _ => CONTENT_TYPES[(flags >> 3) % CONTENT_TYPES.len()],
        };
        let deadline = DEADLINES[(flags >> 5) % DEADLINES.len()].map(Duration::from_millis);
        let rest = bytes.get(3..).unwrap_or_default();
        let body = if byte(2) % 8 == 0 {
            rest.to_vec()
        } else {
            let mut tree = Tree::from(sample);
            let strings = hostile_strings();
            let numbers = hostile_numbers();
            for step in rest.chunks(3) {
                let (what, at, with) = (
                    step[0] as usize,
                    step.get(1).copied().unwrap_or(0) as usize,
                    step.get(2).copied().unwrap_or(0) as usize,
                );
                let at = at % tree.count();
                match what % 4 {
                    0 => {
                        if let Some(node) = tree.node(at) {
                            *node = Tree::Str(strings[with % strings.len()].clone());
                        }
                    }
                    1 => {
                        if let Some(node) = tree.node(at) {
                            *node = numbers[with % numbers.len()].clone();
                        }
                    }
                    2 => match tree.node(at) {
                        Some(Tree::Map(entries)) if !entries.is_empty() => {
                            let index = with % entries.len();
                            entries.remove(index);
                        }
                        Some(Tree::Arr(items)) if !items.is_empty() => {
                            let index = with % items.len();
                            items.remove(index);
                        }
                        _ => {}
                    },
                    _ => match tree.node(at) {
                        Some(Tree::Map(entries)) => {
                            entries.push((strings[with % strings.len()].clone(), Tree::UInt(with as u64)));
                        }
                        Some(Tree::Arr(items)) => {
                            let copy = items.first().cloned().unwrap_or(Tree::Null);
                            items.extend(std::iter::repeat_n(copy, with));
                        }
                        Some(node) => *node = Tree::Arr(vec![Tree::Map(Vec::new()); with % 8]),
                        None => {}
                    },
                }
            }
            if msgpack { tree.to_msgpack() } else { tree.to_json() }
        };
        Plan { subject: subject.clone(), content_type: content_type.map(str::to_string), deadline, body }
    }
}

/// The three services in this process, over the in-memory stores, calling each other in process,
/// with no faults: what the plans are sent to.
pub struct Services {
    dispatchers: Vec<Arc<Dispatcher>>,
}

impl Services {
    /// Builds them (a tokio runtime must be running: the shop sweeps its claims on a task).
    pub async fn start() -> Result<Self, crate::StackError> {
        let hosted = Hosting { skus: 50, units: 1_000_000_000, ..Hosting::default() }
            .host(Links { peers: None, events: None })
            .await?;
        Ok(Self { dispatchers: hosted.dispatchers.into_iter().map(Arc::new).collect() })
    }

    /// Sends `plan` and checks the reply.
    pub async fn drive(&self, plan: &Plan) -> Result<(), String> {
        let service = plan.subject.split('.').next().unwrap_or_default();
        let Some(dispatcher) = self.dispatchers.iter().find(|d| d.service() == service) else {
            return Err(format!("no service {service}"));
        };
        let mut head = natsrpc::RequestHead::new(&plan.subject).with_correlation_id("fuzz");
        if let Some(value) = &plan.content_type {
            head = head.with_content_type(value);
        }
        if let Some(deadline) = plan.deadline {
            head = head.with_budget(deadline);
        }
        let reply = dispatcher.dispatch(head, plan.body.clone().into()).await;
        check(&reply).map_err(|failure| format!("{}: {failure}", plan.subject))
    }
}

/// What every reply must be: an envelope of its status, never a 500, with header-safe headers.
pub fn check(reply: &Dispatched) -> Result<(), String> {
    let envelope: Value = match reply.codec {
        natsrpc::Codec::Json => serde_json::from_slice(&reply.body).map_err(|e| format!("not JSON: {e}"))?,
        natsrpc::Codec::MsgPack => {
            rmp_serde::from_slice(&reply.body).map_err(|e| format!("not MessagePack: {e}"))?
        }
    };
    if reply.status == 500 {
        return Err(format!("a 500 (a panic, with the in-memory stores): {envelope}"));
    }
    let ok = envelope["ok"].as_bool();
    let consistent = if reply.status == 200 {
        ok == Some(true)
    } else {
        ok == Some(false) && envelope["error"]["status"].as_u64() == Some(u64::from(reply.status))
    };
    if !consistent {
        return Err(format!("status {} with {envelope}", reply.status));
    }
    let safe = |value: &str| value.len() <= 512 && value.bytes().all(|b| (b' '..=b'~').contains(&b));
    // What each edge writes into its headers: NATS's framing, and the correlation id HTTP and AMQP send back.
    let headers = reply.nats_headers().unwrap_or_default();
    let written =
        headers.iter().flat_map(|(name, values)| values.iter().map(move |v| (name.to_string(), v.as_str())));
    let id = reply.correlation_id.as_deref().map(|id| (natsrpc::headers::CORRELATION_ID.to_string(), id));
    for (name, value) in written.chain(id) {
        if !safe(value) {
            return Err(format!("header {name} is not header-safe: {value:?}"));
        }
    }
    Ok(())
}
