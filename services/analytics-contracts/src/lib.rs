//! # analytics-contracts
//!
//! The analytics service's contracts: events, batches of them, and the queries over them.
//!
//! Endpoints: `ingest_event`, `ingest_batch`, `query_aggregates`, `query_timeseries`, `top_n`,
//! `user_activity`.
//! An event's timestamp must lie in the retention window (up to [`RETENTION_MS`] old, at most
//! [`FUTURE_SKEW_MS`] ahead of the service's clock): older data has already been forgotten.
//!
//! A crate of their own, as for every service, so that a caller needs the contracts and not the
//! service's domain and store: the shop's order overview and fileproc's forwarding call it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use natsrpc::Violation;
use natsrpc::validation::field_error;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

/// The service's name on NATS and in the Services API.
pub const SERVICE: &str = "analytics";
/// How long events are kept and queryable: one hour.
pub const RETENTION_MS: u64 = 60 * 60 * 1000;
/// How far ahead of the service's clock an event may be: five minutes.
pub const FUTURE_SKEW_MS: u64 = 5 * 60 * 1000;

#[allow(clippy::expect_used)] // constant patterns, checked by the tests
fn pattern(source: &str) -> Regex {
    Regex::new(source).expect("a valid constant pattern")
}

/// `evt_` and 6 to 60 letters, digits, `_` or `-`.
pub static EVENT_ID: LazyLock<Regex> = LazyLock::new(|| pattern(r"^evt_[A-Za-z0-9_-]{6,60}$"));
/// snake_case, 2 to 64 characters: `page_view`, `order_placed`.
pub static EVENT_TYPE: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[a-z][a-z0-9_]{1,63}$"));
/// `usr_` and 4 to 40 letters or digits.
pub static USER_ID: LazyLock<Regex> = LazyLock::new(|| pattern(r"^usr_[A-Za-z0-9]{4,40}$"));
/// `ses_` and 4 to 40 letters or digits.
pub static SESSION_ID: LazyLock<Regex> = LazyLock::new(|| pattern(r"^ses_[A-Za-z0-9]{4,40}$"));
/// A property key: snake_case, up to 40 characters.
pub static PROPERTY_KEY: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[a-z][a-z0-9_]{0,39}$"));

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
#[validate(schema(function = "timestamp_in_window", skip_on_field_errors = false))]
pub struct Event {
    /// The sender's id for the event; an event sent twice is counted once.
    #[validate(regex(path = *EVENT_ID, code = "event_id_format", message = "must be evt_ followed by 6 to 60 letters, digits, _ or -"))]
    pub event_id: String,
    /// What happened, in snake_case: `page_view`, `order_placed`.
    #[validate(regex(path = *EVENT_TYPE, code = "event_type_format", message = "must be snake_case, 2 to 64 characters"))]
    pub event_type: String,
    /// When, in milliseconds since the Unix epoch; within the retention window.
    pub timestamp_ms: u64,
    /// Who.
    #[validate(regex(path = *USER_ID, code = "user_id_format", message = "must be usr_ followed by 4 to 40 letters or digits"))]
    pub user_id: String,
    /// In which session.
    #[validate(regex(path = *SESSION_ID, code = "session_id_format", message = "must be ses_ followed by 4 to 40 letters or digits"))]
    pub session_id: String,
    /// A number to sum and take percentiles of (revenue, duration), finite, within ±10^12.
    #[validate(custom(function = "natsrpc::validation::finite"), range(min = -1e12, max = 1e12))]
    pub value: Option<f64>,
    /// Up to 32 properties; keys snake_case up to 40, text values up to 256 characters.
    #[validate(custom(function = "properties_within_limits"))]
    pub properties: BTreeMap<String, PropertyValue>,
}

/// A property's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PropertyValue {
    /// true or false.
    Bool(bool),
    /// A number, finite.
    Number(f64),
    /// Text.
    Text(String),
}

fn properties_within_limits(properties: &BTreeMap<String, PropertyValue>) -> Result<(), ValidationError> {
    if properties.len() > 32 {
        return Err(ValidationError::new("too_many_properties").with_message("at most 32 properties".into()));
    }
    if properties.keys().any(|key| !PROPERTY_KEY.is_match(key)) {
        return Err(ValidationError::new("property_key_format")
            .with_message("property keys are snake_case, up to 40 characters".into()));
    }
    // validator's rules do not reach into a map's values: NaN and the infinities are refused here.
    if properties.values().any(|value| matches!(value, PropertyValue::Number(n) if !n.is_finite())) {
        return Err(ValidationError::new("finite").with_message("a property's number must be finite".into()));
    }
    let too_long =
        properties.values().any(|value| matches!(value, PropertyValue::Text(t) if t.chars().count() > 256));
    if too_long {
        return Err(ValidationError::new("property_too_long")
            .with_message("a property's text is up to 256 characters".into()));
    }
    Ok(())
}

fn timestamp_in_window(event: &Event) -> Result<(), ValidationError> {
    let now = now_ms();
    let (oldest, newest) = (now.saturating_sub(RETENTION_MS), now + FUTURE_SKEW_MS);
    if (oldest..=newest).contains(&event.timestamp_ms) {
        return Ok(());
    }
    let mut error = field_error(
        "timestamp_ms",
        "timestamp_out_of_window",
        "must be within the last hour and no more than five minutes ahead",
    );
    error.add_param("oldest".into(), &oldest);
    error.add_param("newest".into(), &newest);
    Err(error)
}

/// Ingests one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct IngestEvent {
    /// The event.
    #[validate(nested)]
    pub event: Event,
}

/// What `ingest_event` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventIngested {
    /// The event's id.
    pub event_id: String,
    /// False when the event had been ingested before (and is not counted again).
    pub new: bool,
}

/// Ingests 5 to 500 events. Each is validated on its own: the valid ones are kept, and the reply
/// lists the others with their violations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct IngestBatch {
    /// The sender's id for the batch.
    #[validate(length(min = 1, max = 64))]
    pub batch_id: String,
    /// The events, validated one by one by the service (not as a whole).
    #[validate(length(min = 5, max = 500))]
    pub events: Vec<Event>,
}

/// What `ingest_batch` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BatchIngested {
    /// The batch's id.
    pub batch_id: String,
    /// Valid events counted now.
    pub accepted: u32,
    /// Valid events that had been ingested before.
    pub duplicates: u32,
    /// Invalid events, by position in the batch, and why.
    pub rejected: Vec<RejectedEvent>,
}

/// An event of a batch that was not ingested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RejectedEvent {
    /// Its position in the batch, from 0.
    pub index: u32,
    /// Its id as sent.
    pub event_id: String,
    /// Every rule it broke; paths are relative to the event.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub violations: Vec<Violation>,
}

/// A time window, `from_ms` inclusive to `to_ms` exclusive, at most the retention long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, JsonSchema)]
#[validate(schema(function = "window_is_ordered", skip_on_field_errors = false))]
pub struct Window {
    /// Start, in milliseconds since the Unix epoch.
    pub from_ms: u64,
    /// End, exclusive.
    pub to_ms: u64,
}

fn window_is_ordered(window: &Window) -> Result<(), ValidationError> {
    if window.to_ms <= window.from_ms {
        return Err(field_error("to_ms", "window_order", "must be after from_ms"));
    }
    if window.to_ms - window.from_ms > RETENTION_MS + FUTURE_SKEW_MS {
        return Err(field_error(
            "to_ms",
            "window_too_long",
            "a window spans at most the retention (one hour)",
        ));
    }
    Ok(())
}

/// Counts, sums and percentiles of `value` per event type over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct QueryAggregates {
    /// Only this event type; all when absent.
    #[validate(regex(path = *EVENT_TYPE, code = "event_type_format", message = "must be snake_case, 2 to 64 characters"))]
    pub event_type: Option<String>,
    /// The window.
    #[validate(nested)]
    pub window: Window,
}

/// What `query_aggregates` answers, one entry per event type, by type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Aggregates {
    /// Per event type.
    pub types: Vec<TypeAggregate>,
}

/// The figures of one event type in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TypeAggregate {
    /// The event type.
    pub event_type: String,
    /// Events.
    pub count: u64,
    /// Sum of `value` over the events that have one.
    pub sum: f64,
    /// Percentiles of `value` (from a sample of at most 1,024 values per type and minute).
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// Per-minute counts and sums of one event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct QueryTimeseries {
    /// The event type.
    #[validate(regex(path = *EVENT_TYPE, code = "event_type_format", message = "must be snake_case, 2 to 64 characters"))]
    pub event_type: String,
    /// The window.
    #[validate(nested)]
    pub window: Window,
}

/// What `query_timeseries` answers: one bucket per minute of the window, empty minutes included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Timeseries {
    /// The event type.
    pub event_type: String,
    /// Minute buckets, oldest first.
    pub buckets: Vec<Bucket>,
}

/// One minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bucket {
    /// The minute's start, in milliseconds since the Unix epoch.
    pub minute_ms: u64,
    /// Events.
    pub count: u64,
    /// Sum of `value`.
    pub sum: f64,
}

/// What to rank in `top_n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Event types by count.
    EventType,
    /// Users by count of events.
    User,
}

/// The `n` most frequent event types or users in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct TopN {
    /// What to rank.
    pub by: Dimension,
    /// How many, 1 to 100.
    #[validate(range(min = 1, max = 100))]
    pub n: u32,
    /// The window.
    #[validate(nested)]
    pub window: Window,
}

/// What `top_n` answers, most frequent first (ties by key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ranking {
    /// The entries.
    pub entries: Vec<RankEntry>,
}

/// One ranked key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RankEntry {
    /// The event type or user id.
    pub key: String,
    /// Events.
    pub count: u64,
}

/// How many events one user (a customer) has in a window: their recent activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct UserActivity {
    /// The user: an event's `user_id`, or the shop's customer id for its orders.
    #[validate(length(min = 1, max = 64))]
    pub user_id: String,
    /// The window.
    #[validate(nested)]
    pub window: Window,
}

/// What `user_activity` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Activity {
    /// The user.
    pub user_id: String,
    /// Their events in the window, each counted once.
    pub events: u64,
}

natsrpc::request!(IngestEvent => EventIngested, service = "analytics", endpoint = "ingest_event", idempotent = true, schema);
natsrpc::request!(IngestBatch => BatchIngested, service = "analytics", endpoint = "ingest_batch", idempotent = true, schema);
natsrpc::request!(QueryAggregates => Aggregates, service = "analytics", endpoint = "query_aggregates", idempotent = true, schema);
natsrpc::request!(QueryTimeseries => Timeseries, service = "analytics", endpoint = "query_timeseries", idempotent = true, schema);
natsrpc::request!(TopN => Ranking, service = "analytics", endpoint = "top_n", idempotent = true, schema);
natsrpc::request!(UserActivity => Activity, service = "analytics", endpoint = "user_activity", idempotent = true, schema);
