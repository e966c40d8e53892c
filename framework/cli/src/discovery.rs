//! Asking the NATS Services API: `$SRV.INFO` and `$SRV.STATS` are answered by every instance of
//! every service (or of the one named), so each question gathers the answers that come within a
//! wait rather than taking the first.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use crate::CliError;

/// The most answers one question gathers.
pub const MAX_ANSWERS: usize = 10_000;

/// A service's `$SRV.INFO` answer, read leniently (any ADR-32 service's reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Info {
    /// The service's name.
    pub name: String,
    /// This instance's id.
    pub id: String,
    /// Its version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Its endpoints.
    #[serde(deserialize_with = "null_as_default")]
    pub endpoints: Vec<EndpointInfo>,
}

/// An endpoint of [`Info`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EndpointInfo {
    /// Its name.
    pub name: String,
    /// Where requests go.
    pub subject: String,
    /// The queue group its instances share.
    pub queue_group: String,
    /// natsrpc's `request_schema` and `response_schema` (JSON texts), among others.
    #[serde(deserialize_with = "null_as_default")]
    pub metadata: std::collections::BTreeMap<String, String>,
}

impl EndpointInfo {
    /// Its request's JSON Schema, when the service serves one (natsrpc's `request!(..., schema)`).
    pub fn request_schema(&self) -> Option<Value> {
        serde_json::from_str(self.metadata.get("request_schema")?).ok()
    }

    /// Its response's JSON Schema.
    pub fn response_schema(&self) -> Option<Value> {
        serde_json::from_str(self.metadata.get("response_schema")?).ok()
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Every answer to `subject` (a `$SRV` question) that comes within `wait`, as JSON; answers that
/// are not JSON are left out.
pub async fn gather(
    nats: &async_nats::Client,
    subject: &str,
    wait: Duration,
) -> Result<Vec<Value>, CliError> {
    let inbox = nats.new_inbox();
    let mut replies = nats.subscribe(inbox.clone()).await.map_err(|e| CliError::Nats(e.to_string()))?;
    nats.publish_with_reply(subject.to_string(), inbox, Bytes::new())
        .await
        .map_err(|e| CliError::Nats(e.to_string()))?;
    nats.flush().await.map_err(|e| CliError::Nats(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut answers = Vec::new();
    // However many answer: a flood of replies on the inbox ends the gathering, not the memory.
    while answers.len() < MAX_ANSWERS
        && let Ok(Some(reply)) = tokio::time::timeout_at(deadline, replies.next()).await
    {
        if let Ok(answer) = serde_json::from_slice(&reply.payload) {
            answers.push(answer);
        }
    }
    Ok(answers)
}

/// Every instance's `$SRV.INFO` (of the service `name`, or of all), sorted by name then id.
pub async fn infos(
    nats: &async_nats::Client,
    name: Option<&str>,
    wait: Duration,
) -> Result<Vec<Info>, CliError> {
    let subject = name.map_or_else(|| "$SRV.INFO".to_string(), |name| format!("$SRV.INFO.{name}"));
    let mut infos: Vec<Info> = gather(nats, &subject, wait)
        .await?
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    infos.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(infos)
}

/// The endpoint whose subject is `subject`, among the services that answer within `wait`.
pub async fn endpoint_of(
    nats: &async_nats::Client,
    subject: &str,
    wait: Duration,
) -> Result<Option<EndpointInfo>, CliError> {
    // A natsrpc subject starts with its service's name: ask that one first, then every service.
    let service = subject.split('.').next().filter(|s| !s.is_empty() && !s.contains(['*', '>']));
    for name in [service, None] {
        let found = infos(nats, name, wait)
            .await?
            .into_iter()
            .flat_map(|i| i.endpoints)
            .find(|e| e.subject == subject);
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Whether `name` may be put in a `$SRV` subject: the Services API's names, `[A-Za-z0-9_-]+`.
pub fn is_service_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
