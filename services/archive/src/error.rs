//! The archive's error.

use natsrpc::ServiceError;

/// What can go wrong while archiving. The texts name no values from an event: they go to logs
/// and to a listener's stats.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The database's address cannot be read.
    #[error("ARCHIVE_URL is not a PostgreSQL address: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// The database could not be reached, or it failed a statement.
    #[error("postgres: {}", explain(.0))]
    Database(#[from] tokio_postgres::Error),
    /// The database did not answer in time (stalled, or too busy); the statement may still run,
    /// which archiving the event again makes harmless.
    #[error("postgres did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// Another call is connecting to the database (it was down or its connection broke): this one
    /// does not wait for it.
    #[error("postgres: connecting")]
    Connecting,
    /// A figure of the event does not fit the table's column.
    #[error("{0} is too large to archive")]
    OutOfRange(&'static str),
}

/// tokio-postgres says only "db error" or "error connecting to server": the reason is its source.
fn explain(error: &tokio_postgres::Error) -> String {
    match (error.as_db_error(), std::error::Error::source(error)) {
        (Some(db), _) => format!("{}: {}", db.code().code(), db.message()),
        (None, Some(source)) => format!("{error}: {source}"),
        (None, None) => error.to_string(),
    }
}

impl ArchiveError {
    /// Whether the event is not at fault: the database is down, starting, slow, out of
    /// resources or gave up a transaction, and the same event will be archived once it is back.
    /// A statement the database refuses for its content (classes 22, 23, 42...) is not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::TimedOut(_) | Self::Connecting => true,
            // No SQL state: the connection failed or broke.
            Self::Database(error) => error.code().is_none_or(|code| {
                let code = code.code();
                ["08", "40", "53", "57P"].iter().any(|class| code.starts_with(class))
            }),
            Self::Url(_) | Self::OutOfRange(_) => false,
        }
    }
}

impl From<ArchiveError> for ServiceError {
    fn from(error: ArchiveError) -> Self {
        // The detail goes to the log and the listener's stats, escaped, from the framework.
        if error.is_transient() {
            // A 503: delivered again for as long as the database is away, never dead-lettered.
            ServiceError::unavailable("the archive's database is unavailable")
        } else {
            ServiceError::internal("the archive failed")
        }
    }
}
