//! The analytics logic, free of any transport: every stack calls these methods.

mod store;

use std::sync::Arc;

use faults::Faults;
use validator::Validate;

pub use store::{
    DEFAULT_MAX_EVENTS, EventStore, MINUTE_MS, MemoryStore, SAMPLE_SIZE, aggregate, minutes_of, rank,
};

use ecommerce_contracts::events::{OrderCancelledEvent, OrderPlacedEvent};

use crate::contracts::{
    Activity, Aggregates, BatchIngested, Event, EventIngested, IngestBatch, IngestEvent, QueryAggregates,
    QueryTimeseries, Ranking, RejectedEvent, Timeseries, TopN, UserActivity,
};
use crate::error::AnalyticsError;

/// The analytics service: its store and its injected faults.
#[derive(Debug)]
pub struct Analytics<S> {
    store: S,
    faults: Arc<Faults>,
}

impl<S: EventStore> Analytics<S> {
    /// Analytics over `store`.
    pub fn new(store: S, faults: Arc<Faults>) -> Self {
        Self { store, faults }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Ingests one (already validated) event.
    pub async fn ingest_event(&self, request: IngestEvent) -> Result<EventIngested, AnalyticsError> {
        self.disturb().await?;
        let event_id = request.event.event_id.clone();
        let new = self.store.record(vec![request.event]).await? == 1;
        Ok(EventIngested { event_id, new })
    }

    /// Validates each event of a batch on its own, keeps the valid ones, and reports the others.
    pub async fn ingest_batch(&self, request: IngestBatch) -> Result<BatchIngested, AnalyticsError> {
        self.disturb().await?;
        let mut valid = Vec::with_capacity(request.events.len());
        let mut rejected = Vec::new();
        for (index, event) in request.events.into_iter().enumerate() {
            match event.validate() {
                Ok(()) => valid.push(event),
                Err(errors) => rejected.push(RejectedEvent {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    event_id: event.event_id,
                    violations: natsrpc::validation::violations(&errors),
                }),
            }
        }
        let valid_count = u32::try_from(valid.len()).unwrap_or(u32::MAX);
        let accepted = self.store.record(valid).await?;
        Ok(BatchIngested {
            batch_id: request.batch_id,
            accepted,
            duplicates: valid_count - accepted,
            rejected,
        })
    }

    /// Counts, sums and percentiles per event type.
    pub async fn query_aggregates(&self, request: QueryAggregates) -> Result<Aggregates, AnalyticsError> {
        self.disturb().await?;
        let types = self.store.aggregates(request.event_type.as_deref(), &request.window).await?;
        Ok(Aggregates { types })
    }

    /// Per-minute counts and sums.
    pub async fn query_timeseries(&self, request: QueryTimeseries) -> Result<Timeseries, AnalyticsError> {
        self.disturb().await?;
        let buckets = self.store.timeseries(&request.event_type, &request.window).await?;
        Ok(Timeseries { event_type: request.event_type, buckets })
    }

    /// The most frequent event types or users.
    pub async fn top_n(&self, request: TopN) -> Result<Ranking, AnalyticsError> {
        self.disturb().await?;
        let entries = self.store.top(request.by, request.n, &request.window).await?;
        Ok(Ranking { entries })
    }

    /// One user's events in a window.
    pub async fn user_activity(&self, request: UserActivity) -> Result<Activity, AnalyticsError> {
        self.disturb().await?;
        let events = self.store.user_events(&request.user_id, &request.window).await?;
        Ok(Activity { user_id: request.user_id, events })
    }

    /// Counts a placed order as an `order_placed` event worth its amount, once per order.
    pub async fn order_placed(&self, event: OrderPlacedEvent) -> Result<(), AnalyticsError> {
        let value = event.amount_cents as f64 / 100.0;
        self.record_order("order_placed", &event.order_id, event.customer_id, event.placed_at_ms, value).await
    }

    /// Counts a cancelled order as an `order_cancelled` event worth its refund, once per order.
    pub async fn order_cancelled(&self, event: OrderCancelledEvent) -> Result<(), AnalyticsError> {
        let value = event.refunded_cents as f64 / 100.0;
        self.record_order("order_cancelled", &event.order_id, event.customer_id, event.cancelled_at_ms, value)
            .await
    }

    async fn record_order(
        &self,
        kind: &str,
        order_id: &str,
        user: String,
        at_ms: u64,
        value: f64,
    ) -> Result<(), AnalyticsError> {
        // The event id comes from the order: a redelivered event is counted once.
        let event = Event {
            event_id: format!("evt_{kind}_{order_id}"),
            event_type: kind.to_string(),
            timestamp_ms: at_ms,
            user_id: user,
            session_id: "ses_orders".into(),
            value: Some(value),
            properties: Default::default(),
        };
        self.store.record(vec![event]).await.map(|_| ())
    }

    async fn disturb(&self) -> Result<(), AnalyticsError> {
        self.faults.disturb().await.map_err(|_| AnalyticsError::InjectedFault)
    }
}
