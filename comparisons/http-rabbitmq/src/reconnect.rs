//! A connection to the broker that is made again when it was lost: lapin does not recover one by
//! default, so a broker restart would otherwise leave a process answering 503 for ever.
//!
//! The user finding the connection gone makes one attempt to connect again, bounded by
//! [`CONNECT_TIMEOUT`]; meanwhile, and for [`RECONNECT_EVERY`] after an attempt failed, other
//! users are told at once that the broker cannot be reached, rather than waiting for a connection
//! that is not there.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::AmqpError;

/// How long after a failed attempt the next may start.
pub const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// How long one attempt to connect may take (a broker host that drops packets would otherwise
/// hold it for minutes of TCP retries).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What is kept per connection (the connection and its channels), and whether it still works.
pub trait Link: Send + Sync + 'static {
    /// Whether the connection is still open.
    fn is_open(&self) -> bool;
}

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    /// Another user is connecting, or the last attempt failed less than [`RECONNECT_EVERY`] ago.
    #[error("the broker cannot be reached; trying again shortly")]
    Waiting,
    /// This attempt took longer than [`CONNECT_TIMEOUT`].
    #[error("the broker did not answer within {CONNECT_TIMEOUT:?}")]
    TimedOut,
    /// This attempt failed.
    #[error("the broker cannot be reached: {0}")]
    Failed(#[source] AmqpError),
}

/// The link in use, made again when it was lost.
pub struct Reconnecting<T> {
    /// What it is, for the log.
    what: String,
    /// `None` once it failed and until a user connects again.
    live: RwLock<Option<Arc<T>>>,
    /// Held by the user that connects again, with the time the last attempt ended.
    attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl<T: Link> Reconnecting<T> {
    /// Starts with `first`, already open.
    pub fn new(what: impl Into<String>, first: T) -> Self {
        Self {
            what: what.into(),
            live: RwLock::new(Some(Arc::new(first))),
            attempt: tokio::sync::Mutex::new(None),
        }
    }

    /// The link in use, while it is open.
    fn current(&self) -> Option<Arc<T>> {
        let live = self.live.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        live.as_ref().filter(|link| link.is_open()).cloned()
    }

    /// The open link, or a new one made by `open`.
    pub async fn get<F, Fut>(&self, open: F) -> Result<Arc<T>, Unreachable>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AmqpError>>,
    {
        if let Some(link) = self.current() {
            return Ok(link);
        }
        // One attempt at a time; the others are told at once.
        let Ok(mut last_attempt) = self.attempt.try_lock() else {
            return Err(Unreachable::Waiting);
        };
        // Another user may have connected just before.
        if let Some(link) = self.current() {
            return Ok(link);
        }
        if last_attempt.is_some_and(|ended| ended.elapsed() < RECONNECT_EVERY) {
            return Err(Unreachable::Waiting);
        }
        // Stamped however the attempt ends, even if this user gives up on it (its future dropped).
        let stamp = Stamp(&mut last_attempt);
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, open()).await;
        drop(stamp);
        match attempt.map_err(|_| Unreachable::TimedOut)? {
            Ok(link) => {
                let link = Arc::new(link);
                *self.live.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(Arc::clone(&link));
                tracing::info!(what = %self.what, "connected to the broker again");
                Ok(link)
            }
            Err(error) => {
                tracing::warn!(what = %self.what, %error, "the broker cannot be reached");
                Err(Unreachable::Failed(error))
            }
        }
    }
}

/// Sets the time the attempt ended when dropped, whether it finished or was given up on.
struct Stamp<'a>(&'a mut Option<Instant>);

impl Drop for Stamp<'_> {
    fn drop(&mut self) {
        *self.0 = Some(Instant::now());
    }
}

impl<T: Link> Reconnecting<T> {
    /// Drops `failed` as the link in use (a channel of it failed while the connection looked
    /// open), so that the next user connects again.
    pub fn forget(&self, failed: &Arc<T>) {
        let mut live = self.live.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if live.as_ref().is_some_and(|current| Arc::ptr_eq(current, failed)) {
            *live = None;
        }
    }
}

#[cfg(test)]
mod tests {
    //! The bookkeeping alone, with a link whose openness the test sets: the broker's side is
    //! tested against a real RabbitMQ in `tests/recovery.rs`.
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    struct Flag(Arc<AtomicBool>);

    impl Link for Flag {
        fn is_open(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn a_lost_link_is_tried_again_at_most_every_interval_and_then_kept() {
        let first = Arc::new(AtomicBool::new(true));
        let link = Reconnecting::new("test", Flag(Arc::clone(&first)));
        let attempts = AtomicUsize::new(0);
        let broker_up = AtomicBool::new(false);
        let open = || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            if broker_up.load(Ordering::SeqCst) {
                Ok(Flag(Arc::new(AtomicBool::new(true))))
            } else {
                Err(AmqpError::Config("down".into()))
            }
        };
        assert!(link.get(open).await.is_ok());
        assert_eq!(attempts.load(Ordering::SeqCst), 0, "an open link is used as it is");

        first.store(false, Ordering::SeqCst);
        assert!(matches!(link.get(open).await, Err(Unreachable::Failed(_))));
        assert!(matches!(link.get(open).await, Err(Unreachable::Waiting)), "not again at once");
        assert_eq!(attempts.load(Ordering::SeqCst), 1);

        broker_up.store(true, Ordering::SeqCst);
        tokio::time::sleep(RECONNECT_EVERY).await;
        let again = link.get(open).await.unwrap();
        assert!(Arc::ptr_eq(&again, &link.get(open).await.unwrap()), "the new link is kept");
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        link.forget(&again);
        tokio::time::sleep(RECONNECT_EVERY).await;
        assert!(!Arc::ptr_eq(&again, &link.get(open).await.unwrap()), "a forgotten link is replaced");
    }
}
