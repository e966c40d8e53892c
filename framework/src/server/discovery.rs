//! The NATS Services API (ADR-32): `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS`, each answered for all
//! services, by name, and by name and instance id, so `nats micro ls|info|stats` work unchanged.

use std::collections::BTreeMap;

use serde::Serialize;

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
    queue_group: &'a str,
    metadata: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct Stats<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    id: &'a str,
    version: &'a str,
    metadata: &'a BTreeMap<String, String>,
    started: &'a str,
    endpoints: Vec<EndpointStats<'a>>,
    /// The service's event listeners: beyond ADR-32, which tools ignore (its schema allows more).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    listeners: Vec<crate::events::ListenerStats>,
}

#[derive(Serialize)]
struct EndpointStats<'a> {
    name: &'a str,
    subject: &'a str,
    queue_group: &'a str,
    num_requests: u64,
    num_errors: u64,
    processing_time: u64,
    average_processing_time: u64,
    last_error: String,
    data: serde_json::Value,
}

/// The reply to a `$SRV.{verb}...` request, or `None` for a verb ADR-32 does not define.
pub(crate) fn answer(
    router: &Router,
    subject: &str,
    listeners: impl FnOnce() -> Vec<crate::events::ListenerStats>,
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
                    queue_group: &service.queue_group,
                    metadata: e.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                })
                .collect(),
        }),
        "STATS" => serde_json::to_vec(&Stats {
            kind: STATS_TYPE,
            name: &service.name,
            id: &service.id,
            version: &service.version,
            metadata: &service.metadata,
            started: &service.started,
            endpoints: router
                .endpoints()
                .map(|e| {
                    let in_flight = e.limits.in_flight.load(std::sync::atomic::Ordering::Relaxed);
                    let s = e.limits.stats.snapshot(in_flight);
                    EndpointStats {
                        name: &e.name,
                        subject: &e.subject,
                        queue_group: &service.queue_group,
                        num_requests: s.requests,
                        num_errors: s.errors,
                        processing_time: s.processing_nanos,
                        average_processing_time: s.average_processing_nanos,
                        last_error: s.last_error,
                        data: s.data,
                    }
                })
                .collect(),
            listeners: listeners(),
        }),
        _ => return None,
    };
    encoded.ok()
}
