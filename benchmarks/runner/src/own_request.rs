//! Requests of one's own: a mix entry that gives its body (`body:` inline, or `template:` a file)
//! is sent as written, to any subject or path, with `{{variables}}` filled in for each request.
//!
//! | variable | value |
//! |---|---|
//! | `{{seq}}` | the request's number in the measurement, from 0: unique within it |
//! | `{{run}}` | letters unique to the run, for ids unlike any earlier run's (`ord_{{run}}{{seq}}`) |
//! | `{{uuid}}` | a random UUID (version 4) |
//! | `{{random_int A B}}` | a whole number from A to B, both included |
//! | `{{choice a b c}}` | one of the words |
//! | `{{now_ms}}` | the time of sending, in milliseconds since 1970 |
//! | `{{csv.COLUMN}}` | that column of the `data:` file's row for the request (row `seq` modulo the rows) |
//! | `{{NAME}}` | in a flow's step, the value an earlier step captured as `NAME` from its answer |
//!
//! Random values follow the run's seed and the request's number: the same seed, the same bodies.
//! Every value is written JSON-escaped, so that a quote in a CSV cell cannot end the string it
//! sits in. The body must be JSON once filled in: every row and every choice is tried when the
//! file is read, so a template that would make a broken body is refused before anything runs.
//! With `codec: msgpack`, the JSON is sent as MessagePack (maps with named fields, as natsrpc's
//! own clients send it).

use std::fmt::Write as _;

use bytes::Bytes;
use natsrpc::Codec;
use serde::{Deserialize, Serialize};

use crate::draw::splitmix64;

/// The largest template accepted, in bytes.
pub const MAX_TEMPLATE: usize = 4 * 1024 * 1024;

/// The most rows read from a `data:` file.
pub const MAX_ROWS: usize = 100_000;

/// How a request of one's own is encoded on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyCodec {
    /// As written: `application/json`.
    #[default]
    Json,
    /// The JSON re-encoded as MessagePack: `application/msgpack`.
    Msgpack,
}

impl BodyCodec {
    /// natsrpc's codec of the same name.
    pub fn codec(self) -> Codec {
        match self {
            BodyCodec::Json => Codec::Json,
            BodyCodec::Msgpack => Codec::MsgPack,
        }
    }
}

/// What the answer to a request of one's own must be (`expect:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// natsrpc's success envelope (`{"ok": true, ...}`), or a fault the scenario injects.
    #[default]
    Ok,
    /// Any answer at all: for a service that does not answer in natsrpc's envelope, where only a
    /// timeout or a transport failure is an error.
    Any,
    /// A validation error naming the field `path` (the request is invalid on purpose).
    Invalid {
        /// The field the error must name (`items[0].sku`).
        path: String,
        /// The rule broken, for the error counts (`expected` when unset).
        #[serde(default)]
        code: Option<String>,
    },
}

/// A parsed body template, its codec, the answer it expects and the rows it reads.
#[derive(Debug)]
pub struct OwnRequest {
    pieces: Vec<Piece>,
    /// How it is encoded.
    pub codec: BodyCodec,
    /// What its answer must be.
    pub expect: Outcome,
    rows: Option<Rows>,
}

/// A piece of a template: text as written, or a variable.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Seq,
    Run,
    Uuid,
    RandomInt(i64, i64),
    Choice(Vec<String>),
    NowMs,
    /// A column of the data file, by index.
    Csv(usize),
    /// A value an earlier step of the flow captured, by the index of its name.
    Captured(usize),
}

/// A `data:` file: its header and rows.
#[derive(Debug)]
struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// How the variables are drawn for one rendering.
#[derive(Clone, Copy)]
enum Draw {
    /// For a request: random values from the seed and the request's number.
    Random { seed: u64 },
    /// For the check at load: the `k`-th choice of every `choice`, row `k`.
    Probe(usize),
}

impl OwnRequest {
    /// Parses `template` (JSON with `{{variables}}`), with `data` (a CSV file's name and text) for
    /// `{{csv.*}}`; answers what is wrong, naming the variable or the line.
    pub fn parse(
        template: &str,
        codec: BodyCodec,
        expect: Outcome,
        data: Option<(&str, &str)>,
    ) -> Result<Self, String> {
        Self::parse_in_flow(template, codec, expect, data, &[])
    }

    /// [`OwnRequest::parse`] of a flow's step, which may also name the values `captures` (what
    /// earlier steps capture, in order: [`OwnRequest::render_captured`] is given their values so).
    pub fn parse_in_flow(
        template: &str,
        codec: BodyCodec,
        expect: Outcome,
        data: Option<(&str, &str)>,
        captures: &[String],
    ) -> Result<Self, String> {
        if template.len() > MAX_TEMPLATE {
            return Err(format!("the body is {} bytes, above {MAX_TEMPLATE}", template.len()));
        }
        let rows =
            data.map(|(name, text)| parse_csv(text).map_err(|why| format!("{name}: {why}"))).transpose()?;
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find("{{") {
            let close = rest[open..].find("}}").map(|at| open + at).ok_or_else(|| {
                format!("a {{{{ at byte {} is never closed", template.len() - rest.len() + open)
            })?;
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            pieces.push(variable(rest[open + 2..close].trim(), rows.as_ref(), captures)?);
            rest = &rest[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        let request = Self { pieces, codec, expect, rows };
        // Every row and every choice once: the body must be JSON whichever is drawn.
        let probes = request
            .pieces
            .iter()
            .map(|piece| match piece {
                Piece::Choice(words) => words.len(),
                _ => 1,
            })
            .chain(request.rows.as_ref().map(|rows| rows.rows.len()))
            .max()
            .unwrap_or(1);
        // A captured value stands in as 0, which reads as JSON inside quotes or out.
        let zeros = vec![String::from("0"); captures.len()];
        for k in 0..probes {
            let text = request.text(k as u64, "run", Draw::Probe(k), &zeros);
            if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
                let row = request.rows.as_ref().map(|_| format!(" (data row {})", k + 1)).unwrap_or_default();
                return Err(format!("the body is not JSON once filled in{row}: {error}"));
            }
        }
        Ok(request)
    }

    /// The body of request number `seq` of the run `run`, its variables drawn from `seed`.
    pub fn render(&self, seq: u64, seed: u64, run: &str) -> Bytes {
        self.render_captured(seq, seed, run, &[])
    }

    /// [`OwnRequest::render`] of a flow's step, with the values its earlier steps captured.
    pub fn render_captured(&self, seq: u64, seed: u64, run: &str, captured: &[String]) -> Bytes {
        let text = self.text(seq, run, Draw::Random { seed }, captured);
        match self.codec {
            BodyCodec::Json => Bytes::from(text),
            // The check at load makes every body JSON; were one not, it would go as it is, under
            // MessagePack's content type, and come back as the service's decode error, counted.
            BodyCodec::Msgpack => serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|value| Codec::MsgPack.encode(&value).ok())
                .map_or_else(|| Bytes::from(text), Bytes::from),
        }
    }

    /// The variables' names a template may use, for messages.
    pub fn variables() -> &'static str {
        "seq, run, uuid, random_int A B, choice a b c, now_ms, csv.COLUMN"
    }

    /// Whether `name` is a variable's (so not free for a flow's capture).
    pub fn is_variable(name: &str) -> bool {
        matches!(name, "seq" | "run" | "uuid" | "random_int" | "choice" | "now_ms")
            || name.starts_with("csv.")
    }

    fn text(&self, seq: u64, run: &str, draw: Draw, captured: &[String]) -> String {
        let mut state = match draw {
            Draw::Random { seed } => seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            Draw::Probe(k) => k as u64,
        };
        let mut out = String::with_capacity(256);
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Seq => {
                    let _ = write!(out, "{seq}");
                }
                Piece::Run => escaped(&mut out, run),
                Piece::Uuid => {
                    let (a, b) = (splitmix64(&mut state), splitmix64(&mut state));
                    // Version 4, variant 10.
                    let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000;
                    let b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
                    let _ = write!(
                        out,
                        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                        a >> 32,
                        (a >> 16) & 0xFFFF,
                        a & 0xFFFF,
                        b >> 48,
                        b & 0xFFFF_FFFF_FFFF
                    );
                }
                Piece::RandomInt(low, high) => {
                    let span = high.abs_diff(*low).saturating_add(1);
                    let value = match draw {
                        Draw::Random { .. } => {
                            low.wrapping_add((splitmix64(&mut state) % span.max(1)) as i64)
                        }
                        Draw::Probe(_) => *low,
                    };
                    let _ = write!(out, "{value}");
                }
                Piece::Choice(words) => {
                    let index = match draw {
                        Draw::Random { .. } => (splitmix64(&mut state) % words.len() as u64) as usize,
                        Draw::Probe(k) => k % words.len(),
                    };
                    escaped(&mut out, &words[index]);
                }
                Piece::NowMs => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    let _ = write!(out, "{now}");
                }
                Piece::Captured(index) => escaped(&mut out, captured.get(*index).map_or("", String::as_str)),
                Piece::Csv(column) => {
                    if let Some(rows) = &self.rows {
                        let row = match draw {
                            Draw::Random { .. } => (seq % rows.rows.len() as u64) as usize,
                            Draw::Probe(k) => k % rows.rows.len(),
                        };
                        escaped(&mut out, rows.rows[row].get(*column).map_or("", String::as_str));
                    }
                }
            }
        }
        out
    }
}

/// Writes `value` as the inside of a JSON string (on the send path: no allocation of its own).
fn escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// The variable written `{{text}}`.
fn variable(text: &str, rows: Option<&Rows>, captures: &[String]) -> Result<Piece, String> {
    // Quoted in messages as it was written, control characters escaped and cut.
    let shown = natsrpc::escape::escape(text, 80);
    let mut words = text.split_whitespace();
    let name = words.next().unwrap_or_default();
    let arguments: Vec<&str> = words.collect();
    let none = |piece: Piece| {
        if arguments.is_empty() {
            Ok(piece)
        } else {
            Err(format!("{{{{{shown}}}}}: {name} takes no arguments"))
        }
    };
    match name {
        "seq" => none(Piece::Seq),
        "run" => none(Piece::Run),
        "uuid" => none(Piece::Uuid),
        "now_ms" => none(Piece::NowMs),
        "random_int" => match arguments.as_slice() {
            [low, high] => match (low.parse::<i64>(), high.parse::<i64>()) {
                (Ok(low), Ok(high)) if low <= high => Ok(Piece::RandomInt(low, high)),
                _ => Err(format!("{{{{{shown}}}}}: two whole numbers, the first at most the second")),
            },
            _ => Err(format!("{{{{{shown}}}}}: random_int takes two numbers, A and B")),
        },
        "choice" if !arguments.is_empty() => {
            Ok(Piece::Choice(arguments.iter().map(|word| (*word).to_string()).collect()))
        }
        "choice" => Err("{{choice}} needs at least one word".to_string()),
        _ if captures.iter().any(|c| c == name) => {
            none(Piece::Captured(captures.iter().position(|c| c == name).unwrap_or_default()))
        }
        _ => match name.strip_prefix("csv.") {
            Some(column) => {
                let rows = rows.ok_or_else(|| format!("{{{{{shown}}}}} needs a `data:` file"))?;
                let index = rows.columns.iter().position(|c| c == column).ok_or_else(|| {
                    format!(
                        "{{{{{shown}}}}}: the data file has no column {column:?} (it has {})",
                        natsrpc::escape::escape(&rows.columns.join(", "), 200)
                    )
                })?;
                none(Piece::Csv(index))
            }
            None => Err(format!("{{{{{shown}}}}} is not a variable ({})", OwnRequest::variables())),
        },
    }
}

/// Reads a CSV file: a header row, then at least one row; fields separated by commas, quoted
/// with `"` where they hold a comma, a quote (doubled) or a line break.
fn parse_csv(text: &str) -> Result<Rows, String> {
    let mut records: Vec<Vec<String>> = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                if records.len() > MAX_ROWS {
                    return Err(format!("more than {MAX_ROWS} rows"));
                }
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is never closed".to_string());
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records.retain(|r| !(r.len() == 1 && r[0].is_empty()));
    let mut records = records.into_iter();
    let columns = records.next().ok_or("empty: it needs a header row and at least one row")?;
    let rows: Vec<Vec<String>> = records.collect();
    if rows.is_empty() {
        return Err("no rows under the header".to_string());
    }
    if let Some(at) = rows.iter().position(|row| row.len() != columns.len()) {
        return Err(format!("row {} has {} fields, the header {}", at + 1, rows[at].len(), columns.len()));
    }
    Ok(Rows { columns, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(template: &str) -> Result<OwnRequest, String> {
        OwnRequest::parse(template, BodyCodec::Json, Outcome::Ok, None)
    }

    fn json(request: &OwnRequest, seq: u64) -> serde_json::Value {
        serde_json::from_slice(&request.render(seq, 7, "r1")).unwrap()
    }

    #[test]
    fn a_flows_step_names_what_earlier_steps_captured() {
        let captures = ["upload_id".to_string(), "n".to_string()];
        let step = OwnRequest::parse_in_flow(
            r#"{"upload_id": "{{upload_id}}", "count": {{n}}}"#,
            BodyCodec::Json,
            Outcome::Ok,
            None,
            &captures,
        )
        .unwrap();
        let body = step.render_captured(0, 1, "r", &["upl_\"1".to_string(), "3".to_string()]);
        assert_eq!(&body[..], br#"{"upload_id": "upl_\"1", "count": 3}"#, "escaped as any value is");
        assert!(
            parse(r#"{"a": "{{upload_id}}"}"#).unwrap_err().contains("is not a variable"),
            "captured nowhere"
        );
        assert!(
            OwnRequest::is_variable("seq")
                && OwnRequest::is_variable("csv.x")
                && !OwnRequest::is_variable("id")
        );
    }

    #[test]
    fn variables_are_filled_in_per_request_and_the_same_seed_gives_the_same_bodies() {
        let request = parse(
            r#"{"id": "ord_{{run}}{{seq}}", "n": {{random_int 1 3}}, "colour": "{{ choice red green }}", "key": "{{uuid}}", "at": {{now_ms}}}"#,
        )
        .unwrap();
        let (first, second) = (json(&request, 0), json(&request, 1));
        assert_eq!(first["id"], "ord_r10");
        assert_eq!(second["id"], "ord_r11");
        for seq in 0..50 {
            let body = json(&request, seq);
            assert!((1..=3).contains(&body["n"].as_i64().unwrap()), "{body}");
            assert!(["red", "green"].contains(&body["colour"].as_str().unwrap()));
            let uuid = body["key"].as_str().unwrap();
            assert_eq!((uuid.len(), &uuid[14..15]), (36, "4"), "{uuid}");
            assert!(body["at"].as_u64().unwrap() > 1_700_000_000_000);
        }
        assert_eq!(request.render(9, 7, "r1")[..60], request.render(9, 7, "r1")[..60], "reproducible");
        assert_ne!(json(&request, 3)["key"], json(&request, 4)["key"]);
    }

    #[test]
    fn csv_rows_are_taken_in_turn_and_escaped() {
        let csv = "sku,name\nA-1,\"Tea, green\"\nB-2,\"say \"\"hi\"\"\"\n";
        let request = OwnRequest::parse(
            r#"{"sku": "{{csv.sku}}", "name": "{{csv.name}}"}"#,
            BodyCodec::Json,
            Outcome::Ok,
            Some(("skus.csv", csv)),
        )
        .unwrap();
        assert_eq!(json(&request, 0), serde_json::json!({"sku": "A-1", "name": "Tea, green"}));
        assert_eq!(json(&request, 1)["name"], "say \"hi\"");
        assert_eq!(json(&request, 2)["sku"], "A-1", "round and round");
        // Whatever a cell holds (a quote, a backslash, control characters) comes back as written,
        // and the body stays JSON.
        let csv = "v\n\"\"\"\\\u{0}\u{1b}\t\r\u{2028}é\"\n";
        let hostile =
            OwnRequest::parse(r#"{"v": "{{csv.v}}"}"#, BodyCodec::Json, Outcome::Ok, Some(("h.csv", csv)));
        assert_eq!(json(&hostile.unwrap(), 0)["v"], "\"\\\u{0}\u{1b}\t\r\u{2028}é");
    }

    #[test]
    fn msgpack_bodies_are_the_json_as_messagepack() {
        let request = OwnRequest::parse(
            r#"{"sku": "S-{{seq}}", "quantity": 5}"#,
            BodyCodec::Msgpack,
            Outcome::Ok,
            None,
        )
        .unwrap();
        let value: serde_json::Value = Codec::MsgPack.decode(&request.render(4, 1, "r")).unwrap();
        assert_eq!(value, serde_json::json!({"sku": "S-4", "quantity": 5}));
    }

    #[test]
    fn broken_templates_are_refused_with_the_reason() {
        let refused = |template: &str, data: Option<(&str, &str)>| {
            OwnRequest::parse(template, BodyCodec::Json, Outcome::Ok, data).unwrap_err()
        };
        assert!(refused(r#"{"a": "{{seq"}"#, None).contains("never closed"));
        assert!(refused(r#"{"a": {{nope}}}"#, None).contains("not a variable"));
        assert!(refused(r#"{"a": {{random_int 5 1}}}"#, None).contains("at most the second"));
        assert!(refused(r#"{"a": "{{csv.sku}}"}"#, None).contains("needs a `data:` file"));
        assert!(refused(r#"{"a": "{{csv.x}}"}"#, Some(("d.csv", "sku\nA\n"))).contains("no column \"x\""));
        assert!(
            refused(r#"{"a": {{choice 1 two}}}"#, None).contains("not JSON"),
            "the second choice breaks it"
        );
        assert!(refused(r#"{"a": {{csv.n}}}"#, Some(("d.csv", "n\n1\nx\n"))).contains("data row 2"));
        assert!(refused("{}", Some(("d.csv", "a,b\n1\n"))).contains("row 1 has 1 fields"));
        assert!(refused("{}", Some(("d.csv", "a\n\"1\n"))).contains("never closed"));
        assert!(refused("{\"a\":", None).contains("not JSON"));
        // A variable as written in the file is escaped in the message.
        assert!(!refused("{{\u{1b}[31m}}", None).contains('\u{1b}'));
        assert!(!refused("{{random_int \u{1b}[31m 5}}", None).contains('\u{1b}'));
        let message = refused("{{csv.\u{7}}}", Some(("d.csv", "a\u{1b}\n1\n")));
        assert!(!message.contains(['\u{7}', '\u{1b}']), "{message:?}");
    }
}
