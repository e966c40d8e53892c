//! The check every stack must pass: each checked-in sample payload of every endpoint, valid and
//! invalid, gets the same status and envelope from the stack as from the NATS services.
//!
//! A stack is anything that answers `(service, endpoint, JSON body)` with `(status, envelope)`:
//! [`over_nats`] and [`over_http`] are the two ways in. Samples run in one sequence on both sides,
//! so that state built by one sample (an order placed) is there for the next (the order fetched).

use natsrpc::testing::Sample;
use serde_json::Value;

/// What a stack answered: the HTTP status (or NATS `Nats-Service-Error-Code`, 200 when absent)
/// and the envelope.
pub type Answer = (u16, Value);

/// Every service's samples, tagged with the service, analytics timestamps set to now.
pub fn samples() -> Vec<(&'static str, Sample)> {
    let mut all: Vec<(&'static str, Sample)> = Vec::new();
    all.extend(
        ecommerce::payloads::Payloads::new(2026, 1000).samples().into_iter().map(|s| ("ecommerce", s)),
    );
    let now = analytics::contracts::now_ms();
    for mut sample in analytics::payloads::Payloads::new(2026, now).samples() {
        analytics::payloads::refresh_timestamps(&mut sample.valid, now);
        analytics::payloads::refresh_timestamps(&mut sample.invalid.request, now);
        all.push(("analytics", sample));
    }
    all.extend(fileproc::payloads::Payloads::new(2026).samples().into_iter().map(|s| ("fileproc", s)));
    all
}

/// The envelope with the fields that are new on every call by design (a fresh upload's id) masked.
pub fn masked(mut envelope: Value) -> Value {
    if let Some(id) = envelope.pointer_mut("/data/upload_id") {
        *id = "<new id>".into();
    }
    envelope
}

/// Sends every sample to both stacks in turn and compares their answers; also checks that each
/// invalid sample fails with a 400 naming the broken field. Answers how many pairs were compared,
/// or the first difference.
pub async fn compare(
    reference: impl AsyncFn(&str, &str, &Value) -> Result<Answer, String>,
    candidate: impl AsyncFn(&str, &str, &Value) -> Result<Answer, String>,
) -> Result<usize, String> {
    let mut compared = 0;
    for (service, sample) in samples() {
        let endpoint = sample.endpoint;
        for body in [&sample.valid, &sample.invalid.request] {
            let expected = reference(service, endpoint, body).await?;
            let got = candidate(service, endpoint, body).await?;
            if expected != got {
                return Err(format!("{service}.{endpoint}: expected {expected:?}, got {got:?}"));
            }
            compared += 1;
            if std::ptr::eq(body, &sample.invalid.request) {
                let (status, envelope) = got;
                let paths: Vec<&str> = envelope["error"]["violations"]
                    .as_array()
                    .map(|all| all.iter().filter_map(|v| v["path"].as_str()).collect())
                    .unwrap_or_default();
                if status != 400 || !paths.contains(&sample.invalid.path.as_str()) {
                    return Err(format!(
                        "{service}.{endpoint}: the invalid sample should fail with 400 at {:?}, got {status} at {paths:?}",
                        sample.invalid.path
                    ));
                }
            }
        }
    }
    Ok(compared)
}

/// Calls `{service}.{endpoint}` over NATS with a JSON body.
pub async fn over_nats(
    nats: &natsrpc::async_nats::Client,
    service: &str,
    endpoint: &str,
    body: &Value,
) -> Result<Answer, String> {
    let mut headers = natsrpc::async_nats::HeaderMap::new();
    headers.insert(natsrpc::headers::CONTENT_TYPE, "application/json");
    let reply = nats
        .request_with_headers(format!("{service}.{endpoint}"), headers, body.to_string().into())
        .await
        .map_err(|error| format!("{service}.{endpoint} over NATS: {error}"))?;
    let status = natsrpc::headers::reply_status(reply.headers.as_ref());
    let envelope = serde_json::from_slice(&reply.payload).map_err(|error| format!("not JSON: {error}"))?;
    Ok((status, masked(envelope)))
}

/// Calls `POST {base}/{service}/{endpoint}` with a JSON body.
pub async fn over_http(
    http: &reqwest::Client,
    base: &str,
    service: &str,
    endpoint: &str,
    body: &Value,
) -> Result<Answer, String> {
    let response = http
        .post(format!("{base}/{service}/{endpoint}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|error| format!("{service}.{endpoint} over HTTP: {error}"))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|error| format!("{service}.{endpoint} body: {error}"))?;
    let envelope = serde_json::from_slice(&bytes).map_err(|error| format!("not JSON: {error}"))?;
    Ok((status, masked(envelope)))
}

/// [`compare`] with the NATS services on `nats` as the reference and an HTTP stack at `base` as
/// the candidate: the check every HTTP stack passes.
pub async fn http_against_nats(nats: &natsrpc::async_nats::Client, base: &str) -> Result<usize, String> {
    let http = reqwest::Client::new();
    compare(
        async |service, endpoint, body| over_nats(nats, service, endpoint, body).await,
        async |service, endpoint, body| over_http(&http, base, service, endpoint, body).await,
    )
    .await
}
