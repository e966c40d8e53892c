//! The hostile-input corpus (`data/hostile/`): every case that ever broke something, replayed
//! against every endpoint of every service on a stack, through any transport.
//!
//! Each case must be answered with an envelope of its status (a 4xx unless the case says `2xx`),
//! with header values that are printable ASCII and bounded, and without the values it names in
//! `never_echo` anywhere (body, headers, the service's stats); afterwards the stack must still
//! answer. See `data/hostile/README.md` for the format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

/// One case of the corpus, as checked in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The file's name, without `.json`.
    pub name: String,
    /// What it broke, or what it guards.
    pub why: String,
    /// `{service}.{endpoint}`, or `*` for every endpoint of every service.
    pub endpoint: String,
    /// The request's `Content-Type`, when it has one.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Other request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    #[serde(default)]
    body: Option<String>,
    /// The body as base64.
    #[serde(default)]
    body_base64: Option<String>,
    /// The body as pieces repeated: `[["[", 50000], [{"hex": "c0"}, 1]]`.
    #[serde(default)]
    body_parts: Option<Vec<(Piece, usize)>>,
    /// `nats` or `http` when the case only makes sense over one (a subject NATS cannot carry, a
    /// header HTTP cannot).
    #[serde(default)]
    pub only: Option<String>,
    /// The statuses allowed, `|`-separated: classes (`4xx`, the default; `2xx`) or codes (`504`).
    #[serde(default = "four_xx")]
    pub expect: String,
    /// A violation path the 400 must name.
    #[serde(default)]
    pub violation: Option<String>,
    /// Text that must not come back, in the reply or in the stats.
    #[serde(default)]
    pub never_echo: Vec<String>,
}

fn four_xx() -> String {
    "4xx".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Piece {
    Text(String),
    Hex { hex: String },
}

impl Case {
    /// The body's bytes.
    pub fn body(&self) -> Result<Vec<u8>, String> {
        if let Some(text) = &self.body {
            return Ok(text.as_bytes().to_vec());
        }
        if let Some(encoded) = &self.body_base64 {
            return base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("{}: {e}", self.name));
        }
        let mut body = Vec::new();
        for (piece, times) in self.body_parts.iter().flatten() {
            let bytes = match piece {
                Piece::Text(text) => text.as_bytes().to_vec(),
                Piece::Hex { hex } => (0..hex.len())
                    .step_by(2)
                    .map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| format!("{}: bad hex {hex:?}", self.name))?,
            };
            for _ in 0..*times {
                body.extend_from_slice(&bytes);
            }
        }
        Ok(body)
    }

    /// Whether the case is sent over `transport` (`nats` or `http`).
    pub fn runs_over(&self, transport: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == transport)
    }

    /// The subjects it goes to.
    pub fn subjects(&self) -> Vec<String> {
        if self.endpoint == "*" { endpoints() } else { vec![self.endpoint.clone()] }
    }
}

/// Where the corpus is: `data/hostile/` of the workspace.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/hostile")
}

/// Every case of the corpus, by name.
pub fn corpus() -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let entries = std::fs::read_dir(corpus_dir()).map_err(|e| format!("{}: {e}", corpus_dir().display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let case: Case = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            cases.push(case);
        }
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

/// Every endpoint of the three services.
pub fn endpoints() -> Vec<String> {
    let samples = super::parity::samples();
    let mut all: Vec<String> =
        samples.iter().map(|(service, sample)| format!("{service}.{}", sample.endpoint)).collect();
    // The one endpoint without a checked-in sample (its valid request needs an order first).
    all.push("ecommerce.get_order_overview".to_string());
    all.sort();
    all.dedup();
    all
}

/// What a transport answered.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The HTTP status, or the NATS `Nats-Service-Error-Code` (200 when absent).
    pub status: u16,
    /// The reply's `Content-Type`, when it has one.
    pub content_type: Option<String>,
    /// Every header value of the reply.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends every case of `cases` that runs over `transport` to each of its subjects with `send`, and
/// checks each answer. Answers how many requests were checked, or every failure found.
pub async fn replay(
    transport: &str,
    cases: &[Case],
    send: impl AsyncFn(&str, &Case, &[u8]) -> Result<Sent, String>,
) -> Result<usize, Vec<String>> {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases.iter().filter(|case| case.runs_over(transport)) {
        let body = case.body().map_err(|e| vec![e])?;
        for subject in case.subjects() {
            checked += 1;
            match send(&subject, case, &body).await {
                Ok(sent) => {
                    if let Err(failure) = check(case, &sent) {
                        failures.push(format!("{transport} {} -> {subject}: {failure}", case.name));
                    }
                }
                Err(error) => {
                    failures.push(format!("{transport} {} -> {subject}: no answer: {error}", case.name))
                }
            }
        }
    }
    if failures.is_empty() { Ok(checked) } else { Err(failures) }
}

/// Whether one answer is what the corpus requires.
pub fn check(case: &Case, sent: &Sent) -> Result<(), String> {
    let allowed = |wanted: &str| match wanted.strip_suffix("xx") {
        Some(class) => class.parse::<u16>().is_ok_and(|class| sent.status / 100 == class),
        None => wanted.parse::<u16>().is_ok_and(|code| sent.status == code),
    };
    let envelope = decode(sent)?;
    if !case.expect.split('|').any(allowed) {
        return Err(format!("status {} (wanted {}): {envelope}", sent.status, case.expect));
    }
    let ok = envelope["ok"].as_bool();
    if sent.status >= 400
        && (ok != Some(false) || envelope["error"]["status"].as_u64() != Some(u64::from(sent.status)))
    {
        return Err(format!("not an error envelope of status {}: {envelope}", sent.status));
    }
    if sent.status < 300 && ok != Some(true) {
        return Err(format!("not a success envelope: {envelope}"));
    }
    for (name, value) in &sent.headers {
        if value.len() > 512 || !value.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return Err(format!("header {name} is not header-safe: {} bytes", value.len()));
        }
    }
    if let Some(path) = &case.violation {
        let paths: Vec<&str> = envelope["error"]["violations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["path"].as_str())
            .collect();
        if !paths.contains(&path.as_str()) {
            return Err(format!("no violation at {path}: {envelope}"));
        }
    }
    let reply = format!("{envelope} {:?}", sent.headers);
    if let Some(secret) = case.never_echo.iter().find(|secret| reply.contains(secret.as_str())) {
        return Err(format!("{secret:?} came back: {reply}"));
    }
    Ok(())
}

fn decode(sent: &Sent) -> Result<Value, String> {
    let msgpack = sent.content_type.as_deref().is_some_and(|c| c.contains("msgpack"));
    let decoded = if msgpack {
        rmp_serde::from_slice::<Value>(&sent.body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(&sent.body).map_err(|e| e.to_string())
    };
    decoded.map_err(|error| {
        format!(
            "status {}: not an envelope ({error}): {:?}",
            sent.status,
            String::from_utf8_lossy(&sent.body)
        )
    })
}

/// Every `never_echo` text of the corpus found in `stats` (a `$SRV.STATS` answer, or `GET /stats`).
pub fn echoed_in(cases: &[Case], stats: &str) -> Vec<String> {
    cases
        .iter()
        .flat_map(|case| &case.never_echo)
        .filter(|secret| stats.contains(secret.as_str()))
        .cloned()
        .collect()
}

/// Sends a case's request to `subject` over NATS, raw: its headers as given, with the codec it
/// says.
pub async fn over_nats(
    nats: &natsrpc::async_nats::Client,
    subject: &str,
    case: &Case,
    body: &[u8],
) -> Result<Sent, String> {
    let mut headers = natsrpc::async_nats::HeaderMap::new();
    if let Some(content_type) = &case.content_type {
        headers.insert(natsrpc::headers::CONTENT_TYPE, content_type.as_str());
    }
    for (name, value) in &case.headers {
        headers.insert(name.as_str(), value.as_str());
    }
    let request = natsrpc::async_nats::Request::new()
        .headers(headers)
        .payload(body.to_vec().into())
        .timeout(Some(std::time::Duration::from_secs(10)));
    let reply = nats.send_request(subject.to_string(), request).await.map_err(|e| e.to_string())?;
    let headers: Vec<(String, String)> = reply
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .flat_map(|(name, values)| values.iter().map(move |v| (name.to_string(), v.as_str().to_string())))
        .collect();
    Ok(Sent {
        status: natsrpc::headers::reply_status(reply.headers.as_ref()),
        content_type: headers
            .iter()
            .find(|(n, _)| n == natsrpc::headers::CONTENT_TYPE)
            .map(|(_, v)| v.clone()),
        headers,
        body: reply.payload.to_vec(),
    })
}

/// Sends a case's request to `POST {base}/{service}/{endpoint}`, the path's bytes
/// percent-encoded.
pub async fn over_http(
    http: &reqwest::Client,
    base: &str,
    subject: &str,
    case: &Case,
    body: &[u8],
) -> Result<Sent, String> {
    let (service, endpoint) = subject.split_once('.').unwrap_or((subject, ""));
    let mut request = http.post(format!("{base}/{}/{}", percent_encoded(service), percent_encoded(endpoint)));
    if let Some(content_type) = &case.content_type {
        request = request.header("content-type", content_type);
    }
    for (name, value) in &case.headers {
        request = request.header(name, value);
    }
    let response = request.body(body.to_vec()).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let content_type = headers.iter().find(|(n, _)| n == "content-type").map(|(_, v)| v.clone());
    let body = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
    Ok(Sent { status, content_type, headers, body })
}

fn percent_encoded(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// After the corpus: a valid request to each service, which must be answered 200.
pub async fn still_answering(
    send: impl AsyncFn(&str, &str, &Value) -> Result<super::parity::Answer, String>,
) -> Result<(), String> {
    let samples = super::parity::samples();
    for wanted in ["ecommerce.restock", "analytics.query_aggregates", "fileproc.begin_upload"] {
        let (service, sample) = samples
            .iter()
            .find(|(service, sample)| format!("{service}.{}", sample.endpoint) == wanted)
            .ok_or_else(|| format!("no sample of {wanted}"))?;
        let (status, envelope) = send(service, sample.endpoint, &sample.valid).await?;
        if status != 200 {
            return Err(format!("{wanted} after the corpus: {status} {envelope}"));
        }
    }
    Ok(())
}

/// The corpus against an HTTP stack at `base`, then a valid request to each service: answers how
/// many requests were checked, or every failure.
pub async fn replay_over_http(cases: &[Case], base: &str) -> Result<usize, Vec<String>> {
    let http = reqwest::Client::new();
    let checked =
        replay("http", cases, async |subject, case, body| over_http(&http, base, subject, case, body).await)
            .await?;
    still_answering(async |service, endpoint, body| {
        super::parity::over_http(&http, base, service, endpoint, body).await
    })
    .await
    .map_err(|failure| vec![failure])?;
    Ok(checked)
}
