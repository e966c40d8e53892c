//! The analytics service's error, and its one mapping to the wire.

use natsrpc::ServiceError;

/// What can go wrong in the analytics service.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// An injected internal failure (500).
    #[error("injected internal error")]
    InjectedFault,
    /// The state store failed (500).
    #[error("store: {0}")]
    Store(String),
    /// The store holds as many events as it may, all of this minute (503 `analytics_full`):
    /// older minutes have already been given up to make room.
    #[error("analytics holds its most events ({0}) in the current minute; try again later")]
    Full(usize),
}

impl From<AnalyticsError> for ServiceError {
    fn from(error: AnalyticsError) -> Self {
        match &error {
            AnalyticsError::Full(_) => {
                return ServiceError::business(503, "analytics_full", error.to_string());
            }
            // The detail stays in the log; callers learn only that the service failed.
            AnalyticsError::Store(detail) => tracing::error!(%detail, "store failure"),
            AnalyticsError::InjectedFault => {}
        }
        ServiceError::internal("internal error")
    }
}
