//! The shop's events on a Redis stream, the HTTP+Redis stack's event bus.
//!
//! The shop `XADD`s each event to `{prefix}:events:orders` (subject, id and JSON as fields).
//! Analytics reads it in a consumer group (and the archive, when there is one, in a group of its
//! own: each group sees every event): every instance of the stack is one consumer, so each
//! event goes to one of them; an event is `XACK`ed only once its consumer has it. One that failed (or
//! whose consumer died) stays pending and is claimed again (`XAUTOCLAIM`) after [`RECLAIM_AFTER`].
//! The group starts at the stream's beginning, so events published before the first consumer
//! came up are not missed; the stream is capped (about [`MAX_LEN`] entries).

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use ecommerce::domain::{EventSink, Published, ShopEvent};
use futures::FutureExt;
use redis::AsyncConnectionConfig;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use super::RedisPool;
use crate::StackError;
use crate::links::{self, Failures, Follower};

/// An event left unacknowledged this long is claimed by another consumer (or again by this one).
pub const RECLAIM_AFTER: Duration = Duration::from_secs(5);
/// About how many events the stream keeps.
pub const MAX_LEN: usize = 1_000_000;

/// The stream's key under the pool's prefix.
pub fn stream_key(pool: &RedisPool) -> String {
    pool.key(format_args!("events:orders"))
}

/// Publishes the shop's events to the stream.
#[derive(Debug, Clone)]
pub struct RedisStreamEvents {
    pool: RedisPool,
    key: String,
}

impl RedisStreamEvents {
    /// Events to the stream under `pool`'s prefix.
    pub fn new(pool: RedisPool) -> Self {
        let key = stream_key(&pool);
        Self { pool, key }
    }
}

impl EventSink for RedisStreamEvents {
    fn publish(&self, event: ShopEvent) -> Published<'_> {
        Box::pin(async move {
            let encoded = links::encode(&event)?;
            redis::cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(MAX_LEN)
                .arg("*")
                .arg("subject")
                .arg(encoded.subject)
                .arg("id")
                .arg(&encoded.id)
                .arg("body")
                .arg(encoded.body)
                .query_async::<String>(&mut self.pool.connection())
                .await
                .map(|_| ())
                .map_err(Into::into)
        })
    }
}

/// Follows the stream at `url` / `key` as one consumer of the group `group` (a consumer of
/// [`crate::links`]: `analytics`, `archive`), handing each event to
/// `follower`, until the task is dropped or aborted. Its own connection: a blocking read would
/// hold up every other command on a shared one.
///
/// A failed read or claim opens a new connection (and makes the group again, for a Redis that
/// came back without its data): the old one may be dead for good after Redis restarted, and a
/// follower retrying on it would leave every later event unread while the shop kept adding them.
pub async fn follow(
    url: &str,
    ca: Option<&std::path::Path>,
    key: String,
    group: &'static str,
    follower: Follower,
) -> Result<tokio::task::JoinHandle<()>, StackError> {
    let client = super::open(url, ca)?;
    let connection = connect(&client, &key, group).await.map_err(StackError::redis)?;
    let consumer = format!("{group}-{}", nuid::next());
    tracing::info!(%key, %consumer, "following the order events");
    Ok(tokio::spawn(async move {
        let mut stream = Stream { connection, key, group, consumer, follower, failures: Failures::default() };
        let mut last_reclaim = tokio::time::Instant::now();
        loop {
            let mut failed = None;
            if last_reclaim.elapsed() >= RECLAIM_AFTER {
                last_reclaim = tokio::time::Instant::now();
                failed = stream.reclaim().await.err();
            }
            if failed.is_none() {
                failed = stream.read().await.err();
            }
            let Some(error) = failed else { continue };
            tracing::warn!(%error, "reading the order events failed; connecting again");
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                match connect(&client, &stream.key, group).await {
                    Ok(connection) => {
                        stream.connection = connection;
                        tracing::info!("following the order events again");
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "connecting to the order events failed; trying again")
                    }
                }
            }
        }
    }))
}

/// A connection of the follower's own, with `group` on `key` made if it is not there.
async fn connect(
    client: &redis::Client,
    key: &str,
    group: &str,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    let mut connection = client.get_multiplexed_async_connection_with_config(&config).await?;
    let created: redis::RedisResult<String> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut connection)
        .await;
    match created {
        Err(error) if error.code() != Some("BUSYGROUP") => Err(error),
        _ => Ok(connection),
    }
}

struct Stream {
    connection: redis::aio::MultiplexedConnection,
    key: String,
    group: &'static str,
    consumer: String,
    follower: Follower,
    failures: Failures,
}

impl Stream {
    async fn read(&mut self) -> redis::RedisResult<()> {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(64)
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(">")
            .query_async(&mut self.connection)
            .await?;
        for entries in reply.map(|reply| reply.keys).unwrap_or_default() {
            self.handle(entries.ids).await?;
        }
        Ok(())
    }

    /// Takes over events left unacknowledged for [`RECLAIM_AFTER`]: failed here, or by a consumer
    /// that died.
    async fn reclaim(&mut self) -> redis::RedisResult<()> {
        let mut start = "0-0".to_string();
        loop {
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&self.key)
                .arg(self.group)
                .arg(&self.consumer)
                .arg(RECLAIM_AFTER.as_millis() as u64)
                .arg(&start)
                .arg("COUNT")
                .arg(64)
                .query_async(&mut self.connection)
                .await?;
            if !reply.claimed.is_empty() {
                tracing::info!(events = reply.claimed.len(), "reclaimed pending order events");
            }
            self.handle(reply.claimed).await?;
            if reply.next_stream_id == "0-0" {
                return Ok(());
            }
            start = reply.next_stream_id;
        }
    }

    async fn handle(&mut self, entries: Vec<StreamId>) -> redis::RedisResult<()> {
        for entry in entries {
            let subject: String = entry.get("subject").unwrap_or_default();
            let body: Vec<u8> = entry.get("body").unwrap_or_default();
            let done = match links::decode(&subject, &body) {
                // A panic would end this task and with it the following: the event is dropped
                // instead (it would panic again on every delivery).
                Ok(event) => match AssertUnwindSafe((self.follower)(event)).catch_unwind().await {
                    Ok(Ok(())) => {
                        self.failures.handled();
                        true
                    }
                    Ok(Err(error)) => {
                        self.failures.failed(&error);
                        false
                    }
                    Err(_panic) => {
                        tracing::error!(id = %entry.id, "an order event made its follower panic; dropped");
                        true
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, id = %entry.id, "dropped an order event that cannot be handled");
                    true
                }
            };
            if done {
                redis::cmd("XACK")
                    .arg(&self.key)
                    .arg(self.group)
                    .arg(&entry.id)
                    .query_async::<u64>(&mut self.connection)
                    .await?;
            }
        }
        Ok(())
    }
}
