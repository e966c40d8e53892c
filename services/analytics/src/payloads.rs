//! A deterministic generator of requests for every endpoint, from a seed and a clock: valid ones in
//! three sizes, and invalid ones that each break one named rule and say where the violation points.
//!
//! Events must be recent, so requests are made relative to `now_ms`: the same seed and clock give
//! the same requests. Checked-in samples use [`SAMPLE_NOW_MS`]; send them with [`refresh_timestamps`].

use std::collections::BTreeMap;

use natsrpc::testing::{Invalid, Sample};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::contracts::{
    Dimension, Event, IngestBatch, IngestEvent, PropertyValue, QueryAggregates, QueryTimeseries, TopN,
    UserActivity, Window,
};

/// The clock of the checked-in samples: 2026-01-01T00:00:00Z.
pub const SAMPLE_NOW_MS: u64 = 1_767_225_600_000;

/// Event types the generator uses.
pub const EVENT_TYPES: &[&str] = &["page_view", "add_to_cart", "checkout", "order_placed", "search"];

/// How big a generated batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 5 to 10 events with few properties.
    Small,
    /// 50 to 100 events.
    Medium,
    /// 400 to 500 events with many properties.
    Large,
}

/// Generates requests from a seed and a clock.
#[derive(Debug)]
pub struct Payloads {
    rng: StdRng,
    now_ms: u64,
    next_id: u64,
}

impl Payloads {
    /// A generator whose events happen in the minutes before `now_ms`.
    pub fn new(seed: u64, now_ms: u64) -> Self {
        Self { rng: StdRng::seed_from_u64(seed), now_ms, next_id: 0 }
    }

    /// A valid event of the last ten minutes.
    pub fn event(&mut self, properties: usize) -> Event {
        self.next_id += 1;
        let event_type = EVENT_TYPES[self.rng.random_range(0..EVENT_TYPES.len())];
        let value = matches!(event_type, "checkout" | "order_placed")
            .then(|| f64::from(self.rng.random_range(100..50_000u32)) / 100.0);
        let properties = (0..properties)
            .map(|i| {
                let value = match i % 3 {
                    0 => PropertyValue::Text(format!("value-{}", self.rng.random_range(0..1000))),
                    1 => PropertyValue::Number(f64::from(self.rng.random_range(0..1000u32))),
                    _ => PropertyValue::Bool(self.rng.random_bool(0.5)),
                };
                (format!("prop_{i}"), value)
            })
            .collect();
        Event {
            event_id: format!("evt_{:016x}{:06}", self.rng.random::<u64>(), self.next_id),
            event_type: event_type.to_string(),
            timestamp_ms: self.now_ms - self.rng.random_range(0..600_000),
            user_id: format!("usr_{:05}", self.rng.random_range(0..5_000)),
            session_id: format!("ses_{:08x}", self.rng.random::<u32>()),
            value,
            properties,
        }
    }

    /// A valid `ingest_event`.
    pub fn ingest_event(&mut self) -> IngestEvent {
        IngestEvent { event: self.event(3) }
    }

    /// A valid batch of the given size.
    pub fn ingest_batch(&mut self, size: Size) -> IngestBatch {
        let (count, properties) = match size {
            Size::Small => (self.rng.random_range(5..=10), 2),
            Size::Medium => (self.rng.random_range(50..=100), 5),
            Size::Large => (self.rng.random_range(400..=500), 12),
        };
        self.batch_of(count, properties)
    }

    /// A batch of `count` events (the contract takes 5 to 500) of a medium batch's properties.
    pub fn ingest_batch_of(&mut self, count: usize) -> IngestBatch {
        self.batch_of(count, 5)
    }

    fn batch_of(&mut self, count: usize, properties: usize) -> IngestBatch {
        let events = (0..count).map(|_| self.event(properties)).collect();
        IngestBatch { batch_id: format!("bat_{}", self.rng.random::<u32>()), events }
    }

    /// The last `minutes` minutes.
    pub fn window(&self, minutes: u64) -> Window {
        Window { from_ms: self.now_ms - minutes * 60_000, to_ms: self.now_ms + 1 }
    }

    /// A valid `query_aggregates` over the last ten minutes.
    pub fn query_aggregates(&mut self) -> QueryAggregates {
        QueryAggregates { event_type: None, window: self.window(10) }
    }

    /// A valid `query_timeseries` over the last ten minutes.
    pub fn query_timeseries(&mut self) -> QueryTimeseries {
        QueryTimeseries { event_type: "page_view".into(), window: self.window(10) }
    }

    /// A valid `top_n` over the last ten minutes.
    pub fn top_n(&mut self) -> TopN {
        TopN { by: Dimension::User, n: 10, window: self.window(10) }
    }

    /// Events that each break one rule, covering every rule of `Event`; paths relative to the event.
    pub fn invalid_events(&mut self) -> Vec<Invalid<Event>> {
        type Break = fn(&mut Event, u64);
        let cases: Vec<(&str, &'static str, Break)> = vec![
            ("event_id", "event_id_format", |e, _| e.event_id = "42".into()),
            ("event_type", "event_type_format", |e, _| e.event_type = "Page View".into()),
            ("user_id", "user_id_format", |e, _| e.user_id = "ada".into()),
            ("session_id", "session_id_format", |e, _| e.session_id = "s".into()),
            ("timestamp_ms", "timestamp_out_of_window", |e, now| e.timestamp_ms = now - 2 * 3_600_000),
            ("timestamp_ms", "timestamp_out_of_window", |e, now| e.timestamp_ms = now + 3_600_000),
            ("value", "range", |e, _| e.value = Some(1e13)),
            ("properties", "too_many_properties", |e, _| {
                e.properties = (0..33).map(|i| (format!("p{i}"), PropertyValue::Bool(true))).collect()
            }),
            ("properties", "property_key_format", |e, _| {
                e.properties = BTreeMap::from([("Bad Key".to_string(), PropertyValue::Bool(true))])
            }),
            ("properties", "property_too_long", |e, _| {
                e.properties = BTreeMap::from([("note".to_string(), PropertyValue::Text("x".repeat(257)))])
            }),
        ];
        cases
            .into_iter()
            .map(|(path, code, break_it)| {
                let mut event = self.event(2);
                break_it(&mut event, self.now_ms);
                Invalid::new(event, path, code)
            })
            .collect()
    }

    /// A valid and an invalid request for every endpoint, as JSON.
    pub fn samples(&mut self) -> Vec<Sample> {
        let mut bad_event = self.ingest_event();
        bad_event.event.user_id = "ada".into();
        let mut small_batch = self.ingest_batch(Size::Small);
        small_batch.events.truncate(4);
        let backwards = Window { from_ms: self.now_ms, to_ms: self.now_ms - 60_000 };
        let bad_aggregates = QueryAggregates { event_type: None, window: backwards.clone() };
        let bad_series = QueryTimeseries { event_type: "PageView".into(), window: self.window(10) };
        let bad_top = TopN { n: 0, ..self.top_n() };
        vec![
            Sample::new(
                "ingest_event",
                &self.ingest_event(),
                Invalid::new(bad_event, "event.user_id", "user_id_format"),
            ),
            Sample::new(
                "ingest_batch",
                &self.ingest_batch(Size::Small),
                Invalid::new(small_batch, "events", "length"),
            ),
            Sample::new(
                "query_aggregates",
                &self.query_aggregates(),
                Invalid::new(bad_aggregates, "window.to_ms", "window_order"),
            ),
            Sample::new(
                "query_timeseries",
                &self.query_timeseries(),
                Invalid::new(bad_series, "event_type", "event_type_format"),
            ),
            Sample::new("top_n", &self.top_n(), Invalid::new(bad_top, "n", "range")),
            Sample::new(
                "user_activity",
                &UserActivity { user_id: "usr_00042".into(), window: self.window(10) },
                Invalid::new(
                    UserActivity { user_id: String::new(), window: self.window(10) },
                    "user_id",
                    "length",
                ),
            ),
        ]
    }
}

/// Sets every `timestamp_ms` in a request to the current time, so that a checked-in sample is
/// within the retention window when sent.
pub fn refresh_timestamps(value: &mut serde_json::Value, now_ms: u64) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if key == "timestamp_ms" {
                    *field = now_ms.into();
                } else {
                    refresh_timestamps(field, now_ms);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| refresh_timestamps(item, now_ms)),
        _ => {}
    }
}
