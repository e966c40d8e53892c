//! The NATS Services API (ADR-32): `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS`, each answered for all
//! services, by name, and by name and instance id, so `nats micro ls|info|stats` work unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::router::Router;

/// ADR-32 reply types.
const PING_TYPE: &str = "io.nats.micro.v1.ping_response";
const INFO_TYPE: &str = "io.nats.micro.v1.info_response";
const STATS_TYPE: &str = "io.nats.micro.v1.stats_response";

/// The subjects one instance answers on.
pub(crate) fn subjects(name: &str, id: &str) -> [String; 3] {
    ["$SRV.*".to_string(), format!("$SRV.*.{name}"), format!("$SRV.*.{name}.{id}")]
}

#[derive(Serialize)]
struct Ping<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    id: &'a str,
    version: &'a str,
    metadata: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Info<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    id: &'a str,
    version: &'a str,
    description: &'a str,
    metadata: &'a BTreeMap<String, String>,
    endpoints: Vec<EndpointInfo<'a>>,
}

#[derive(Serialize)]
struct EndpointInfo<'a> {
    name: &'a str,
    subject: &'a str,
    /// Absent for an endpoint in no queue group, as the NATS Services API writes it.
    #[serde(skip_serializing_if = "str::is_empty")]
    queue_group: &'a str,
    metadata: BTreeMap<&'a str, &'a str>,
}

/// A service's `$SRV.STATS` answer (ADR-32's `io.nats.micro.v1.stats_response`), as natsrpc
/// writes it and as a caller reads it back: `GET /stats` of the HTTP stacks answers the same.
/// Reading is lenient (what a field lacks takes its default), so that any ADR-32 service's
/// answer reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceStats {
    /// `io.nats.micro.v1.stats_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The service's name.
    pub name: String,
    /// This instance's id.
    pub id: String,
    /// The service's version.
    pub version: String,
    /// The service's metadata.
    #[serde(deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, String>,
    /// When this instance started (RFC 3339, UTC).
    pub started: String,
    /// Per endpoint.
    #[serde(deserialize_with = "null_as_default")]
    pub endpoints: Vec<EndpointStats>,
    /// The service's event listeners: beyond ADR-32, which tools ignore (its schema allows more).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub listeners: Vec<crate::events::ListenerStats>,
    /// The service's timers, as its listeners.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub timers: Vec<super::TimerStats>,
}

/// One endpoint's figures in [`ServiceStats`]; times in nanoseconds, as ADR-32 wants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointStats {
    /// The endpoint's name.
    pub name: String,
    /// Its subject.
    pub subject: String,
    /// Its queue group; empty (and not written) for none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub queue_group: String,
    /// Requests answered (errors included).
    pub num_requests: u64,
    /// Requests answered with an error.
    pub num_errors: u64,
    /// Time spent in all of them.
    pub processing_time: u64,
    /// `processing_time / num_requests`.
    pub average_processing_time: u64,
    /// The last error, `status:message`, escaped.
    #[serde(deserialize_with = "null_as_default")]
    pub last_error: String,
    /// What natsrpc adds: latency percentiles and validation's cost.
    #[serde(deserialize_with = "null_as_default")]
    pub data: EndpointData,
}

/// Other ADR-32 services write `null` where natsrpc writes an empty object, list or text.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// natsrpc's own figures of an endpoint: ADR-32's free-form `data`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointData {
    /// Latency percentiles, microseconds.
    pub latency_us: Latency,
    /// `on`, or `off` in a build with natsrpc's `unvalidated-control` feature (a benchmark's
    /// control); absent, from builds before the field, means `on`.
    pub validation: String,
    /// Time spent validating, all requests together, nanoseconds.
    pub validation_time: u64,
    /// `validation_time / num_requests`.
    pub average_validation_time: u64,
    /// Validation's share of the processing time.
    pub validation_share: f64,
    /// Requests being processed now.
    pub in_flight: usize,
    /// Requests answered 503 `overloaded`: refused at the endpoint's in-flight bound (or one of
    /// its layers').
    pub num_overloaded: u64,
    /// Requests answered 500, 503 or 504: the service's failures, not the requests' (which a
    /// [circuit breaker](crate::client::layers::CircuitBreakerLayer::fed_by_stats) reads).
    pub num_failures: u64,
}

impl EndpointData {
    /// Whether the build that answered validates (`validation` is not `off`).
    pub fn validates(&self) -> bool {
        self.validation != "off"
    }
}

/// Latency percentiles of an endpoint, microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th.
    pub p95: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

/// The reply to a `$SRV.{verb}...` request, or `None` for a verb ADR-32 does not define.
pub(crate) fn answer(
    router: &Router,
    subject: &str,
    background: Option<&super::Background>,
) -> Option<Vec<u8>> {
    let verb = subject.split('.').nth(1)?;
    let service = &router.service;
    let encoded = match verb {
        "PING" => serde_json::to_vec(&Ping {
            kind: PING_TYPE,
            name: &service.name,
            id: &service.id,
            version: &service.version,
            metadata: &service.metadata,
        }),
        "INFO" => serde_json::to_vec(&Info {
            kind: INFO_TYPE,
            name: &service.name,
            id: &service.id,
            version: &service.version,
            description: &service.description,
            metadata: &service.metadata,
            endpoints: router
                .endpoints()
                .map(|e| EndpointInfo {
                    name: &e.name,
                    subject: &e.subject,
                    queue_group: e.queue_group.as_deref().unwrap_or_default(),
                    metadata: e.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                })
                .collect(),
        }),
        "STATS" => serde_json::to_vec(&ServiceStats {
            kind: STATS_TYPE.to_string(),
            name: service.name.clone(),
            id: service.id.clone(),
            version: service.version.clone(),
            metadata: service.metadata.clone(),
            started: service.started.clone(),
            endpoints: router
                .endpoints()
                .map(|e| {
                    let queue_group = e.queue_group.as_deref().unwrap_or_default();
                    e.limits.stats.snapshot((&e.name, &e.subject, queue_group), e.in_flight())
                })
                .collect(),
            listeners: background
                .map(|b| b.listeners.iter().map(|(subject, counters)| counters.snapshot(subject)).collect())
                .unwrap_or_default(),
            timers: background.map(|b| b.timers.iter().map(|t| t.snapshot()).collect()).unwrap_or_default(),
        }),
        _ => return None,
    };
    encoded.ok()
}
