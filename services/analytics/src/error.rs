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
}

impl From<AnalyticsError> for ServiceError {
    fn from(error: AnalyticsError) -> Self {
        if let AnalyticsError::Store(detail) = &error {
            // The detail stays in the log; callers learn only that the service failed.
            tracing::error!(%detail, "store failure");
        }
        ServiceError::internal("internal error")
    }
}
