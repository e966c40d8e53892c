//! Codecs: JSON (the default) and MessagePack, chosen per request by its `Content-Type` header.
//!
//! A request without the header is JSON when its body starts with `{` or `[` (after white space) and
//! MessagePack otherwise. The reply is written in the request's codec.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::ServiceError;
use crate::escape::escape;

/// MessagePack maps are allowed this deep; deeper input is refused rather than risking the stack.
/// serde_json applies its own limit of 128.
const MSGPACK_MAX_DEPTH: usize = 128;

/// A wire format for request and reply bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// `application/json`, with serde_json.
    #[default]
    Json,
    /// `application/msgpack`, with rmp-serde; structs are encoded as maps, so fields are named.
    MsgPack,
}

impl Codec {
    /// The `Content-Type` value written for this codec.
    pub const fn content_type(self) -> &'static str {
        match self {
            Codec::Json => "application/json",
            Codec::MsgPack => "application/msgpack",
        }
    }

    /// The codec of a `Content-Type` value, ignoring parameters such as `; charset=utf-8`.
    pub fn from_content_type(value: &str) -> Option<Codec> {
        let essence = value.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Some(Codec::Json)
        } else if ["application/msgpack", "application/x-msgpack", "application/vnd.msgpack"]
            .iter()
            .any(|known| essence.eq_ignore_ascii_case(known))
        {
            Some(Codec::MsgPack)
        } else {
            None
        }
    }

    /// The codec of a request: its `Content-Type` when given, else sniffed from the body.
    pub fn detect(content_type: Option<&str>, body: &[u8]) -> Result<Codec, ServiceError> {
        match content_type {
            Some(value) => Codec::from_content_type(value).ok_or_else(|| {
                ServiceError::unsupported_content_type(format!(
                    "unsupported Content-Type {value:?}: use application/json or application/msgpack"
                ))
            }),
            None => Ok(Codec::sniff(body)),
        }
    }

    /// The codec of a body sent without `Content-Type`: JSON when it starts with `{` or `[` (after
    /// white space) or is empty, MessagePack otherwise.
    pub(crate) fn sniff(body: &[u8]) -> Codec {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{' | b'[') | None => Codec::Json,
            Some(_) => Codec::MsgPack,
        }
    }

    /// Encodes a value.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, EncodeError> {
        match self {
            Codec::Json => serde_json::to_vec(value).map_err(EncodeError::Json),
            Codec::MsgPack => rmp_serde::to_vec_named(value).map_err(EncodeError::MsgPack),
        }
    }

    /// Decodes a value, saying where decoding failed when it does. The error's message never
    /// carries the input's values (see [`DecodeError`]).
    pub fn decode<T: DeserializeOwned>(self, body: &[u8]) -> Result<T, DecodeError> {
        // The fast path carries no path tracking; only a failure pays to decode again and locate it.
        let fast = match self {
            // UTF-8 checked once for the whole body: from bytes, serde_json checks every string on
            // its own, which was a tenth of decoding an order (callgrind). Invalid UTF-8 takes the
            // byte path, for the same error at the same place.
            Codec::Json => match std::str::from_utf8(body) {
                Ok(text) => serde_json::from_str(text),
                Err(_) => serde_json::from_slice(body),
            }
            .map_err(|e| json_message(&e)),
            Codec::MsgPack => {
                let mut de = rmp_serde::Deserializer::from_read_ref(body);
                de.set_max_depth(MSGPACK_MAX_DEPTH);
                T::deserialize(&mut de).map_err(|e| msgpack_message(&e))
            }
        };
        fast.map_err(|message| self.locate_error::<T>(body, message))
    }

    fn locate_error<T: DeserializeOwned>(self, body: &[u8], message: String) -> DecodeError {
        let path = match self {
            Codec::Json => {
                let mut de = serde_json::Deserializer::from_slice(body);
                serde_path_to_error::deserialize::<_, T>(&mut de).err().map(|e| e.path().to_string())
            }
            Codec::MsgPack => {
                let mut de = rmp_serde::Deserializer::from_read_ref(body);
                de.set_max_depth(MSGPACK_MAX_DEPTH);
                serde_path_to_error::deserialize::<_, T>(&mut de).err().map(|e| e.path().to_string())
            }
        };
        DecodeError {
            codec: self,
            // "." is serde_path_to_error's name for the root: no field to point at. A path holds the
            // caller's map keys as sent, so it is escaped like any outside text.
            path: path.filter(|p| p != ".").map(|p| escape(&p, MAX_PATH).into_owned()),
            message,
        }
    }
}

/// Why a value could not be encoded: a type serde cannot write in the codec, such as a map with
/// keys that are not strings in JSON. Encoded values are the program's own, so the error may tell
/// them.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// serde_json's error.
    #[error("JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// rmp-serde's error.
    #[error("MessagePack: {0}")]
    MsgPack(#[source] rmp_serde::encode::Error),
}

/// Longest path kept in a decode error, in bytes.
const MAX_PATH: usize = 256;

/// serde_json's message without the input's values. Syntax errors have fixed texts (`expected
/// value`, `EOF while parsing a string`); data errors are serde's, which quote the value.
fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    if error.classify() != serde_json::error::Category::Data {
        return text;
    }
    let position = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&position) {
        Some(message) => format!("{}{position}", redact(message)),
        None => redact(&text),
    }
}

/// rmp-serde's message without the input's values: only its `Syntax` and `Uncategorized` errors
/// carry serde's text; the others are fixed.
fn msgpack_message(error: &rmp_serde::decode::Error) -> String {
    match error {
        rmp_serde::decode::Error::Syntax(message) | rmp_serde::decode::Error::Uncategorized(message) => {
            redact(message)
        }
        other => other.to_string(),
    }
}

/// The kinds of value serde names in `invalid type` and `invalid value` messages (its
/// `Unexpected`), longest first where one starts another.
const UNEXPECTED_KINDS: [&str; 16] = [
    "boolean",
    "integer",
    "floating point",
    "character",
    "string",
    "byte array",
    "unit value",
    "unit variant",
    "Option value",
    "newtype struct",
    "newtype variant",
    "tuple variant",
    "struct variant",
    "sequence",
    "map",
    "enum",
];

/// serde's message about a value, with the value taken out.
///
/// serde writes the rejected value into its messages (`invalid type: integer `4111111111111111`,
/// expected a string`, `unknown variant `x`, ...`), and a decode error's message travels to the
/// reply's headers, the log and `$SRV.STATS`: a card number or a password sent in the wrong place
/// would go with it. What was expected comes from the contract and stays; the rest of a message a
/// type wrote itself (`Error::custom`) is not known to be free of values, so it is replaced.
fn redact(message: &str) -> String {
    // A type with no fields or variants says so instead of what it expected: then any ", expected"
    // in the message is the caller's own text.
    for nothing in [", there are no fields", ", there are no variants"] {
        if message.ends_with(nothing) {
            let what = if message.starts_with("unknown field") { "unknown field" } else { "unknown variant" };
            return format!("{what}{nothing}");
        }
    }
    // The expected part is the contract's; the caller's text comes before it.
    let expected = message.rfind(", expected ").map(|at| &message[at..]).unwrap_or_default();
    for (prefix, what) in [("invalid type: ", "invalid type"), ("invalid value: ", "invalid value")] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return match UNEXPECTED_KINDS.iter().find(|kind| rest.starts_with(*kind)) {
                Some(kind) => format!("{what}: {kind}{expected}"),
                None => format!("{what}{expected}"),
            };
        }
    }
    for (prefix, what) in [("unknown variant `", "unknown variant"), ("unknown field `", "unknown field")] {
        if message.starts_with(prefix) {
            return format!("{what}{expected}");
        }
    }
    // Messages whose only names are the contract's own.
    const FROM_THE_CONTRACT: [&str; 4] =
        ["missing field `", "duplicate field `", "invalid length ", "data did not match any variant"];
    if FROM_THE_CONTRACT.iter().any(|prefix| message.starts_with(prefix)) {
        return escape(message, MAX_PATH).into_owned();
    }
    "invalid value".to_string()
}

/// Why a body could not be decoded, and where.
///
/// The message names what was wrong and what the contract expected, never the value that was sent
/// (`invalid type: integer, expected a string`): it reaches headers, logs and stats, and the value
/// may be a card number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The codec that was decoding.
    pub codec: Codec,
    /// The path of the field that failed, such as `items[2].quantity`, when one is known.
    pub path: Option<String>,
    /// The decoder's message, with line and column for JSON.
    pub message: String,
}

impl std::error::Error for DecodeError {}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let format = match self.codec {
            Codec::Json => "JSON",
            Codec::MsgPack => "MessagePack",
        };
        match &self.path {
            Some(path) => write!(f, "malformed {format} at `{path}`: {}", self.message),
            None => write!(f, "malformed {format}: {}", self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    struct Line {
        sku: String,
        quantity: u32,
    }

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    struct Order {
        items: Vec<Line>,
    }

    #[test]
    fn content_type_parameters_and_aliases_are_understood() {
        assert_eq!(Codec::from_content_type("application/json; charset=utf-8"), Some(Codec::Json));
        assert_eq!(Codec::from_content_type("Application/X-MsgPack"), Some(Codec::MsgPack));
        assert_eq!(Codec::from_content_type("text/plain"), None);
    }

    #[test]
    fn a_body_without_header_is_sniffed() {
        assert_eq!(Codec::detect(None, b"  {\"a\":1}").ok(), Some(Codec::Json));
        assert_eq!(Codec::detect(None, b"[1]").ok(), Some(Codec::Json));
        assert_eq!(Codec::detect(None, &[0x81, 0xa1, b'a', 0x01]).ok(), Some(Codec::MsgPack));
        assert!(Codec::detect(Some("text/xml"), b"{}").is_err());
    }

    #[test]
    fn a_wrong_type_deep_inside_is_located() {
        let body = br#"{"items":[{"sku":"a","quantity":1},{"sku":"b","quantity":"two"}]}"#;
        let err = Codec::Json.decode::<Order>(body).err();
        let err = err.as_ref().map(|e| (e.path.as_deref(), e.message.contains("line 1")));
        assert_eq!(err, Some((Some("items[1].quantity"), true)));
    }

    #[test]
    fn msgpack_round_trips_with_named_fields_and_locates_errors() {
        let order = Order { items: vec![Line { sku: "a".into(), quantity: 3 }] };
        let bytes = Codec::MsgPack.encode(&order).expect("encodes");
        assert_eq!(Codec::MsgPack.decode::<Order>(&bytes).ok(), Some(order));

        let wrong = rmp_serde::to_vec_named(&serde_json::json!({"items": [{"sku": "a", "quantity": -1}]}))
            .expect("encodes");
        let err = Codec::MsgPack.decode::<Order>(&wrong).err();
        assert_eq!(err.and_then(|e| e.path), Some("items[0].quantity".to_string()));
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // only decoded
    struct Payment {
        card_number: String,
        by: Option<By>,
        options: Option<std::collections::BTreeMap<String, u32>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum By {
        User,
        EventType,
    }

    #[test]
    fn a_decode_error_names_what_was_expected_but_never_the_value_sent() {
        let cases: [(&[u8], &str); 4] = [
            (
                br#"{"card_number": 4111111111111111}"#,
                "invalid type: integer, expected a string at line 1 column 32",
            ),
            (
                br#"{"card_number": "x", "by": "x\r\ny"}"#,
                "unknown variant, expected `user` or `event_type` at line 1 column 35",
            ),
            (
                br#"{"card_number": "x", "by": {"secret": 1}}"#,
                "unknown variant, expected `user` or `event_type` at line 1 column 36",
            ),
            (
                br#"{"card_number": "x", "options": {"k\r\n": -3}}"#,
                "invalid value: integer, expected u32 at line 1 column 44",
            ),
        ];
        for (body, message) in cases {
            let error = Codec::Json.decode::<Payment>(body).err().map(|e| e.message);
            assert_eq!(error.as_deref(), Some(message), "{}", String::from_utf8_lossy(body));
        }
        let error = Codec::Json.decode::<Payment>(cases[3].0).err().and_then(|e| e.path);
        assert_eq!(error.as_deref(), Some(r"options.k\r\n"), "a caller's map key is escaped in the path");

        let card = rmp_serde::to_vec_named(&serde_json::json!({"card_number": 4111111111111111u64}))
            .unwrap_or_default();
        let error = Codec::MsgPack.decode::<Payment>(&card).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!error.contains("4111"), "{error}");
        assert!(error.contains("expected a string"), "{error}");
    }

    #[test]
    fn a_caller_cannot_pass_its_own_text_off_as_what_was_expected() {
        let none = "unknown field `a, expected SECRET`, there are no fields";
        assert_eq!(redact(none), "unknown field, there are no fields");
        let variant = "unknown variant `a, expected SECRET`, there are no variants";
        assert_eq!(redact(variant), "unknown variant, there are no variants");
        assert_eq!(
            redact("invalid value: non-base64 text, expected base64"),
            "invalid value, expected base64"
        );
        assert_eq!(redact("a custom message quoting hunter2"), "invalid value");
    }

    #[test]
    fn nesting_beyond_the_limit_is_an_error_not_a_crash() {
        let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(Codec::Json.decode::<serde_json::Value>(deep_json.as_bytes()).is_err());

        let mut deep_msgpack = vec![0x91u8; 100_000]; // fixarray of one element, nested
        deep_msgpack.push(0xc0);
        assert!(Codec::MsgPack.decode::<serde_json::Value>(&deep_msgpack).is_err());
    }
}
