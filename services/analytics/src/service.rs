//! The analytics service on natsrpc: each endpoint hands its validated request to [`Analytics`].

use std::sync::Arc;

use natsrpc::{EndpointOptions, Service, ServiceBuilder, State};

use crate::contracts::{
    Activity, Aggregates, BatchIngested, EventIngested, IngestBatch, IngestEvent, QueryAggregates,
    QueryTimeseries, Ranking, SERVICE, Timeseries, TopN, UserActivity,
};
use ecommerce_contracts::events::{OrderCancelledEvent, OrderPlacedEvent};

use crate::domain::{Analytics, EventStore};
use crate::error::AnalyticsError;

/// The service's endpoints over `analytics`, ready to start (or to test with `natsrpc::testing::Harness`).
pub fn service<S: EventStore>(analytics: Arc<Analytics<S>>) -> ServiceBuilder<Arc<Analytics<S>>> {
    Service::builder(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("Event ingestion and aggregate queries")
        .state(analytics)
        .endpoint(ingest_event::<S>)
        .endpoint(ingest_batch::<S>)
        .endpoint_with(query_aggregates::<S>, read_only())
        .endpoint_with(query_timeseries::<S>, read_only())
        .endpoint_with(top_n::<S>, read_only())
        .endpoint_with(user_activity::<S>, read_only())
}

/// Queries change nothing: a caller's deadline stops them (where a change runs to its end).
fn read_only() -> EndpointOptions {
    EndpointOptions::new().cancel_at_deadline()
}

/// Adds the listeners that count the shop's orders and revenue (`order_placed`) and its
/// cancellations (`order_cancelled`) as events of those types.
pub fn follow_orders<S: EventStore>(
    service: ServiceBuilder<Arc<Analytics<S>>>,
) -> ServiceBuilder<Arc<Analytics<S>>> {
    service.listener(order_placed::<S>).listener(order_cancelled::<S>)
}

type App<S> = State<Arc<Analytics<S>>>;

async fn order_placed<S: EventStore>(
    State(app): App<S>,
    event: OrderPlacedEvent,
) -> Result<(), AnalyticsError> {
    app.order_placed(event).await
}

async fn order_cancelled<S: EventStore>(
    State(app): App<S>,
    event: OrderCancelledEvent,
) -> Result<(), AnalyticsError> {
    app.order_cancelled(event).await
}

async fn ingest_event<S: EventStore>(
    State(app): App<S>,
    req: IngestEvent,
) -> Result<EventIngested, AnalyticsError> {
    app.ingest_event(req).await
}

async fn ingest_batch<S: EventStore>(
    State(app): App<S>,
    req: IngestBatch,
) -> Result<BatchIngested, AnalyticsError> {
    app.ingest_batch(req).await
}

async fn query_aggregates<S: EventStore>(
    State(app): App<S>,
    req: QueryAggregates,
) -> Result<Aggregates, AnalyticsError> {
    app.query_aggregates(req).await
}

async fn query_timeseries<S: EventStore>(
    State(app): App<S>,
    req: QueryTimeseries,
) -> Result<Timeseries, AnalyticsError> {
    app.query_timeseries(req).await
}

async fn top_n<S: EventStore>(State(app): App<S>, req: TopN) -> Result<Ranking, AnalyticsError> {
    app.top_n(req).await
}

async fn user_activity<S: EventStore>(
    State(app): App<S>,
    req: UserActivity,
) -> Result<Activity, AnalyticsError> {
    app.user_activity(req).await
}
