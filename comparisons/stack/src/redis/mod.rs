//! The services' state in Redis, so that any number of stateless instances can serve: the stores
//! of the HTTP+Redis stack (and of the NATS-with-Redis control, and of the RabbitMQ workers).
//!
//! Every key starts with the store's prefix, so that runs and tests share one Redis without
//! seeing each other's data. Whatever must not race (stock, order claims, chunk appends) is one
//! Lua script, which Redis runs atomically.

mod events;
mod files;
mod shop;
pub mod streams;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use redis::aio::ConnectionManager;

pub use events::RedisEventStore;
pub use files::RedisFileStore;
pub use shop::RedisShopStore;

use crate::StackError;

/// A few multiplexed connections, used in turn. One multiplexed connection already pipelines every
/// caller's commands; a handful more let the reads and writes of a busy process go on in parallel
/// on more than one core. Each reconnects by itself after Redis restarts.
#[derive(Clone)]
pub struct RedisPool {
    connections: Arc<[ConnectionManager]>,
    next: Arc<AtomicUsize>,
    prefix: Arc<str>,
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPool")
            .field("connections", &self.connections.len())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A client of the server at `url` (`redis://[user:password@]host:port`, or `rediss://` for TLS),
/// trusting the CA in the PEM file `ca` (else the system's) when it is TLS.
pub fn open(url: &str, ca: Option<&Path>) -> Result<redis::Client, StackError> {
    match ca {
        None => redis::Client::open(url).map_err(StackError::redis),
        Some(ca) => {
            let root = std::fs::read(ca).map_err(|source| StackError::Unreadable {
                name: "REDIS_CA",
                path: ca.to_path_buf(),
                source,
            })?;
            let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(root) };
            redis::Client::build_with_tls(url, certificates).map_err(StackError::redis)
        }
    }
}

/// The longest pause between a lost connection's attempts to connect again.
const RECONNECT_AT_MOST_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl RedisPool {
    /// Opens `size` connections to `url` (`redis://127.0.0.1:6379`); keys start with `prefix`.
    pub async fn connect(url: &str, size: usize, prefix: &str) -> Result<Self, StackError> {
        Self::connect_with(url, None, size, prefix).await
    }

    /// [`RedisPool::connect`] trusting the CA in the PEM file `ca` for a `rediss://` server.
    pub async fn connect_with(
        url: &str,
        ca: Option<&Path>,
        size: usize,
        prefix: &str,
    ) -> Result<Self, StackError> {
        let client = open(url, ca)?;
        // One plain connection first: a wrong password or certificate fails here at once, with the
        // server's reason, where the connection managers would retry it for seconds.
        client.get_multiplexed_async_connection().await.map_err(StackError::redis)?;
        // After losing Redis, a connection tries again with a backoff that doubles from 100 ms:
        // unbounded, its sixth try waits 3.2 s, and every command meanwhile waits for it, long
        // after Redis is back. Capped, a restarted Redis is found within half a second.
        let config = redis::aio::ConnectionManagerConfig::new().set_max_delay(RECONNECT_AT_MOST_EVERY);
        let mut connections = Vec::with_capacity(size.max(1));
        for _ in 0..size.max(1) {
            let manager = client.get_connection_manager_with_config(config.clone()).await;
            connections.push(manager.map_err(StackError::redis)?);
        }
        Ok(Self { connections: connections.into(), next: Arc::default(), prefix: prefix.into() })
    }

    /// The next connection in turn (a cheap handle onto a shared one).
    pub fn connection(&self) -> ConnectionManager {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[index].clone()
    }

    /// `{prefix}:{rest}`.
    pub fn key(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Deletes every key under the prefix (tests, and a benchmark run's clean-up).
    pub async fn clear(&self) -> Result<u64, StackError> {
        let mut connection = self.connection();
        let pattern = format!("{}:*", self.prefix);
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .map_err(StackError::redis)?;
            if !keys.is_empty() {
                let removed: u64 = redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async(&mut connection)
                    .await
                    .map_err(StackError::redis)?;
                deleted += removed;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

/// A script's answer that is not what the script says it answers.
#[derive(Debug, thiserror::Error)]
enum BadReply {
    #[error("a script answered fewer values than it should")]
    Short,
    #[error("a script answered non-UTF-8 text: {0}")]
    NotText(#[source] std::string::FromUtf8Error),
    #[error("a script answered {0:?} for a number")]
    NotNumber(String),
    #[error("the store answered {0:?}")]
    Unexpected(String),
}

/// The reply of a script: its elements as text, read in order.
struct Reply {
    parts: std::vec::IntoIter<Vec<u8>>,
}

impl Reply {
    fn new(parts: Vec<Vec<u8>>) -> Self {
        Self { parts: parts.into_iter() }
    }

    /// The next element as bytes.
    fn bytes(&mut self) -> Result<Vec<u8>, BadReply> {
        self.parts.next().ok_or(BadReply::Short)
    }

    /// The next element as text.
    fn text(&mut self) -> Result<String, BadReply> {
        String::from_utf8(self.bytes()?).map_err(BadReply::NotText)
    }

    /// The next element as a number.
    fn number(&mut self) -> Result<u64, BadReply> {
        let text = self.text()?;
        text.parse().map_err(|_| BadReply::NotNumber(natsrpc::escape::escape(&text, 64).into_owned()))
    }
}
