//! [`Archive`]: the orders of record in PostgreSQL, written once per order and event however
//! often an event is delivered.

use std::sync::Arc;
use std::time::Duration;

use ecommerce_contracts::events::{OrderCancelledEvent, OrderPlacedEvent};
use tokio_postgres::{Client, Config, NoTls};

use crate::error::ArchiveError;

/// The schema's versions, in order: each applied once (those missing together, in one
/// transaction), and recorded in `archive_migrations`.
pub const MIGRATIONS: [(i32, &str); 1] = [(1, include_str!("../migrations/0001_orders.sql"))];

/// How long a connection or a statement may take before the archive gives up on it (and on the
/// connection, which it makes again on the next call).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// What archiving one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new row.
    New,
    /// The row was there already: the event was delivered again.
    AlreadyThere,
}

/// The two kinds of rows, as the `event` column spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchivedEvent {
    /// `placed`: from `order_placed`.
    Placed,
    /// `cancelled`: from `order_cancelled`.
    Cancelled,
}

impl ArchivedEvent {
    /// The `event` column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The archive: one PostgreSQL connection, made (and the schema migrated) on first use and made
/// again after it broke, so that a database that was down is used again as soon as it is back.
/// Statements on it are pipelined: concurrent events do not wait for each other. One caller at a
/// time connects; the others fail at once meanwhile ([`ArchiveError::Connecting`]) rather than
/// queue behind a database that may take seconds to refuse.
///
/// The connection has no TLS: the database is on loopback or a network trusted as such.
pub struct Archive {
    config: Config,
    client: std::sync::Mutex<Option<Arc<Client>>>,
    connecting: tokio::sync::Mutex<()>,
    /// Whether the last attempt to connect failed: the log says when the database goes and comes
    /// back, not once per event meanwhile.
    down: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password: only where the database is.
        f.debug_struct("Archive").field("hosts", &self.config.get_hosts()).finish_non_exhaustive()
    }
}

impl Archive {
    /// An archive in the database at `url` (`postgres://user@host:port/database`); nothing is
    /// connected before the first use, so that a service starts while its database is down.
    pub fn new(url: &str) -> Result<Self, ArchiveError> {
        let mut config: Config = url.parse().map_err(ArchiveError::Url)?;
        config.connect_timeout(ANSWER_WITHIN).application_name("natsrpc-archive");
        Ok(Self {
            config,
            client: std::sync::Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            down: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// [`Archive::new`], connected and migrated now.
    pub async fn connect(url: &str) -> Result<Self, ArchiveError> {
        let archive = Self::new(url)?;
        archive.client().await?;
        Ok(archive)
    }

    /// Archives an order placed.
    pub async fn placed(&self, event: &OrderPlacedEvent) -> Result<Recorded, ArchiveError> {
        let amount =
            i64::try_from(event.amount_cents).map_err(|_| ArchiveError::OutOfRange("amount_cents"))?;
        let units = i64::try_from(event.units).map_err(|_| ArchiveError::OutOfRange("units"))?;
        let at = i64::try_from(event.placed_at_ms).map_err(|_| ArchiveError::OutOfRange("placed_at_ms"))?;
        let inserted = self
            .run(|client| async move {
                client
                    .execute(
                        "INSERT INTO archived_orders (order_id, event, customer_id, amount_cents, currency, units, at_ms) \
                         VALUES ($1, 'placed', $2, $3, $4, $5, $6) ON CONFLICT (order_id, event) DO NOTHING",
                        &[&event.order_id, &text(&event.customer_id), &amount, &text(&event.currency), &units, &at],
                    )
                    .await
            })
            .await?;
        Ok(if inserted == 0 { Recorded::AlreadyThere } else { Recorded::New })
    }

    /// Archives an order cancelled.
    pub async fn cancelled(&self, event: &OrderCancelledEvent) -> Result<Recorded, ArchiveError> {
        let amount =
            i64::try_from(event.refunded_cents).map_err(|_| ArchiveError::OutOfRange("refunded_cents"))?;
        let at =
            i64::try_from(event.cancelled_at_ms).map_err(|_| ArchiveError::OutOfRange("cancelled_at_ms"))?;
        let inserted = self
            .run(|client| async move {
                client
                    .execute(
                        "INSERT INTO archived_orders (order_id, event, customer_id, amount_cents, at_ms) \
                         VALUES ($1, 'cancelled', $2, $3, $4) ON CONFLICT (order_id, event) DO NOTHING",
                        &[&event.order_id, &text(&event.customer_id), &amount, &at],
                    )
                    .await
            })
            .await?;
        Ok(if inserted == 0 { Recorded::AlreadyThere } else { Recorded::New })
    }

    /// When the last of `orders`' rows of `event` was written, by the database's clock
    /// (milliseconds since the Unix epoch); `None` when it holds none of them.
    pub async fn last_archived(
        &self,
        event: ArchivedEvent,
        orders: &[String],
    ) -> Result<Option<f64>, ArchiveError> {
        let row = self
            .run(|client| async move {
                client
                    .query_one(
                        "SELECT (extract(epoch FROM max(archived_at)) * 1000)::float8 FROM archived_orders \
                         WHERE event = $1 AND order_id = ANY($2)",
                        &[&event.as_str(), &orders],
                    )
                    .await
            })
            .await?;
        Ok(row.get(0))
    }

    /// How many rows of `event` the archive holds.
    pub async fn count(&self, event: ArchivedEvent) -> Result<u64, ArchiveError> {
        let row = self
            .run(|client| async move {
                client
                    .query_one("SELECT count(*) FROM archived_orders WHERE event = $1", &[&event.as_str()])
                    .await
            })
            .await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// Of `orders`, those the archive holds as `event`.
    pub async fn holds(&self, event: ArchivedEvent, orders: &[String]) -> Result<Vec<String>, ArchiveError> {
        let rows = self
            .run(|client| async move {
                client
                    .query(
                        "SELECT order_id FROM archived_orders WHERE event = $1 AND order_id = ANY($2)",
                        &[&event.as_str(), &orders],
                    )
                    .await
            })
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The rows of `order_id`, placed before cancelled.
    pub async fn order(&self, order_id: &str) -> Result<Vec<crate::contracts::ArchivedRow>, ArchiveError> {
        let rows = self
            .run(|client| async move {
                client
                    .query(
                        "SELECT event, customer_id, amount_cents, currency, units, at_ms FROM archived_orders \
                         WHERE order_id = $1 ORDER BY event = 'cancelled', at_ms",
                        &[&order_id],
                    )
                    .await
            })
            .await?;
        // The table's checks keep the figures at 0 or above.
        let unsigned = |value: i64| u64::try_from(value).unwrap_or(0);
        Ok(rows
            .iter()
            .map(|row| crate::contracts::ArchivedRow {
                event: row.get(0),
                customer_id: row.get(1),
                amount_cents: unsigned(row.get(2)),
                currency: row.get(3),
                units: row.get::<_, Option<i64>>(4).map(unsigned),
                at_ms: unsigned(row.get(5)),
            })
            .collect())
    }

    /// Runs `statement` on the connection (made first if need be), within [`ANSWER_WITHIN`]. A
    /// connection that took too long is given up, so that the next call makes a new one rather
    /// than queue behind a database that may never answer it.
    async fn run<'a, T, F, Fut>(&self, statement: F) -> Result<T, ArchiveError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + 'a,
    {
        let client = self.client().await?;
        match tokio::time::timeout(ANSWER_WITHIN, statement(Arc::clone(&client))).await {
            Ok(answer) => Ok(answer?),
            Err(_) => {
                let mut slot = lock(&self.client);
                if slot.as_ref().is_some_and(|current| Arc::ptr_eq(current, &client)) {
                    *slot = None;
                }
                Err(ArchiveError::TimedOut(ANSWER_WITHIN))
            }
        }
    }

    /// The open connection, or a new one (migrated) when there is none or it broke.
    async fn client(&self) -> Result<Arc<Client>, ArchiveError> {
        if let Some(client) = self.open() {
            return Ok(client);
        }
        let Ok(_connecting) = self.connecting.try_lock() else {
            return Err(ArchiveError::Connecting);
        };
        // Another caller may have connected between the look and the lock.
        if let Some(client) = self.open() {
            return Ok(client);
        }
        let connecting = async {
            let (mut client, connection) = self.config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "the archive's connection to postgres ended");
                }
            });
            migrate(&mut client).await?;
            Ok::<_, ArchiveError>(client)
        };
        let connected = match tokio::time::timeout(ANSWER_WITHIN, connecting).await {
            Ok(connected) => connected,
            Err(_) => Err(ArchiveError::TimedOut(ANSWER_WITHIN)),
        };
        let hosts = self.config.get_hosts();
        match connected {
            Ok(client) => {
                let was_down = self.down.swap(false, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(?hosts, was_down, "archiving into postgres");
                let client = Arc::new(client);
                *lock(&self.client) = Some(Arc::clone(&client));
                Ok(client)
            }
            Err(error) => {
                if !self.down.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(?hosts, %error, "postgres is unreachable; events wait in the broker until it is back");
                }
                Err(error)
            }
        }
    }

    fn open(&self) -> Option<Arc<Client>> {
        lock(&self.client).as_ref().filter(|client| !client.is_closed()).cloned()
    }
}

/// PostgreSQL's text holds no NUL, which a contract's free text may: one is archived as U+FFFD
/// (the rest as it came), so that such an order is archived rather than refused forever.
fn text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') { value.replace('\0', "\u{FFFD}").into() } else { value.into() }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Applies the migrations the database has not had yet, all in one transaction. Instances that
/// start together take turns (an advisory lock, taken before anything else, even the creation of
/// the migrations' own table), so each migration runs once.
async fn migrate(client: &mut Client) -> Result<(), ArchiveError> {
    /// The advisory lock's key: "natsrpc archive" in a number.
    const LOCK: i64 = 0x6e61_7473_7270_6361;
    let transaction = client.transaction().await?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS archive_migrations \
             (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
    for (version, sql) in MIGRATIONS {
        let applied =
            transaction.query_opt("SELECT 1 FROM archive_migrations WHERE version = $1", &[&version]).await?;
        if applied.is_none() {
            transaction.batch_execute(sql).await?;
            transaction.execute("INSERT INTO archive_migrations (version) VALUES ($1)", &[&version]).await?;
            tracing::info!(version, "archive schema migrated");
        }
    }
    transaction.commit().await?;
    Ok(())
}
