//! Permission refusals. A NATS server that refuses a subscription or a publish for lack of
//! permission does not fail the operation: it drops it and says so on the connection (`-ERR
//! 'Permissions Violation for ...'`), which async-nats turns into an event. Left at that, a service
//! without the right to subscribe starts and never hears a request, and a caller without the right
//! to publish waits out its timeout. So every connection natsrpc makes keeps its last refusals here,
//! where [`crate::Service`] checks them at start and the client when a call finds no reply.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

/// What the server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedAction {
    /// Sending to a subject (a request, a reply, an event, a JetStream API call).
    Publish,
    /// Subscribing to a subject (an endpoint, the Services API, a reply inbox).
    Subscribe,
}

impl std::fmt::Display for DeniedAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeniedAction::Publish => "publish to",
            DeniedAction::Subscribe => "subscribe to",
        })
    }
}

/// One refusal, as the server reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// What was refused.
    pub action: DeniedAction,
    /// The subject, as the server quoted it.
    pub subject: String,
    /// How many refusals this connection had been told of before this one: a caller that counts
    /// them before an operation finds those that came after.
    pub seq: u64,
    /// When the server's word arrived.
    pub at: std::time::Instant,
}

impl Denial {
    /// Reads the server's `Permissions Violation for Subscription to "x"` (with or without
    /// ` using queue "q"`), `Permissions Violation for Publish to "x"` and `Permissions Violation
    /// for Publish with Reply of "x"` (a request whose reply subject the user may not use).
    fn parse(text: &str, seq: u64) -> Option<Self> {
        let rest = text.trim().trim_matches('\'').strip_prefix("Permissions Violation for ")?;
        let (action, rest) = if let Some(rest) = rest.strip_prefix("Subscription to ") {
            (DeniedAction::Subscribe, rest)
        } else if let Some(rest) = rest.strip_prefix("Publish with Reply of ") {
            (DeniedAction::Publish, rest)
        } else {
            (DeniedAction::Publish, rest.strip_prefix("Publish to ")?)
        };
        let subject = rest.strip_prefix('"')?.split('"').next()?.to_string();
        Some(Denial { action, subject, seq, at: std::time::Instant::now() })
    }
}

/// The last token of the probe subject a service's start sends to find out what the server refused
/// ([`crate::Service::start`]): its own refusal is expected and not worth a log line.
pub(crate) const PROBE: &str = "natsrpc-permission-probe";

/// How many refusals a connection keeps: enough to name every subject a service was refused at
/// start, bounded so that a caller refused in a loop does not grow memory.
const KEPT: usize = 64;

/// A connection's recent refusals.
#[derive(Default)]
pub(crate) struct Denials {
    recent: Mutex<(u64, VecDeque<Denial>)>,
}

impl Denials {
    /// Records the server's error text if it is a refusal; answers the refusal.
    pub(crate) fn record(&self, text: &str) -> Option<Denial> {
        let Ok(mut recent) = self.recent.lock() else { return None };
        let denial = Denial::parse(text, recent.0)?;
        recent.0 += 1;
        if recent.1.len() == KEPT {
            recent.1.pop_front();
        }
        recent.1.push_back(denial.clone());
        Some(denial)
    }

    /// Forgets the refusals of an earlier connection: after a reconnect, the client subscribes
    /// everything again and the server says again what it refuses.
    pub(crate) fn reconnected(&self) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.1.clear();
        }
    }

    /// How many refusals have been recorded so far.
    pub(crate) fn count(&self) -> u64 {
        self.recent.lock().map(|r| r.0).unwrap_or(0)
    }

    /// The refusals recorded since `count` was `since`.
    pub(crate) fn since(&self, since: u64) -> Vec<Denial> {
        let Ok(recent) = self.recent.lock() else { return Vec::new() };
        recent.1.iter().filter(|d| d.seq >= since).cloned().collect()
    }
}

/// Which connection each record belongs to. A client has no slot for data of ours, but every clone
/// of one shares the one `Statistics` of its connection: that allocation names the connection.
type Registry = Vec<(Weak<async_nats::Statistics>, Arc<Denials>)>;

static REGISTRY: Mutex<Registry> = Mutex::new(Vec::new());

/// Files `denials` under `client`'s connection (and forgets closed connections).
pub(crate) fn register(client: &async_nats::Client, denials: Arc<Denials>) {
    if let Ok(mut registry) = REGISTRY.lock() {
        registry.retain(|(connection, _)| connection.strong_count() > 0);
        registry.push((Arc::downgrade(&client.statistics()), denials));
    }
}

/// The record of `client`'s connection, if natsrpc made it.
pub(crate) fn of(client: &async_nats::Client) -> Option<Arc<Denials>> {
    let statistics = client.statistics();
    let registry = REGISTRY.lock().ok()?;
    registry
        .iter()
        .find(|(connection, _)| connection.as_ptr() == Arc::as_ptr(&statistics))
        .map(|(_, d)| Arc::clone(d))
}

/// The refusals the server has reported on `client`'s connection (the last 64), oldest first;
/// empty when the connection was not made by natsrpc ([`crate::connect`], [`crate::NatsConfig`]).
pub fn permission_denials(client: &async_nats::Client) -> Vec<Denial> {
    of(client).map(|d| d.since(0)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_servers_refusals_and_nothing_else() {
        let denials = Denials::default();
        let sub = denials.record(
            "Permissions Violation for Subscription to \"ecommerce.create_order\" using queue \"ecommerce\"",
        );
        assert_eq!(
            sub.map(|d| (d.action, d.subject)),
            Some((DeniedAction::Subscribe, "ecommerce.create_order".into()))
        );
        let publish = denials.record("'Permissions Violation for Publish to \"$SRV.PING\"'");
        assert_eq!(
            publish.map(|d| (d.action, d.subject, d.seq)),
            Some((DeniedAction::Publish, "$SRV.PING".into(), 1))
        );
        let reply = denials.record("Permissions Violation for Publish with Reply of \"_INBOX.x\"");
        assert_eq!(reply.map(|d| (d.action, d.subject)), Some((DeniedAction::Publish, "_INBOX.x".into())));
        assert_eq!(denials.record("Maximum Payload Violation"), None);
        assert_eq!(denials.record("Permissions Violation for Publish to x"), None, "an unquoted subject");
        assert_eq!(denials.count(), 3);
        assert_eq!(denials.since(1).len(), 2);
        denials.reconnected();
        assert_eq!((denials.since(0).len(), denials.count()), (0, 3), "the count goes on");
    }

    #[test]
    fn keeps_a_bounded_number() {
        let denials = Denials::default();
        for i in 0..200 {
            denials.record(&format!("Permissions Violation for Publish to \"s.{i}\""));
        }
        let kept = denials.since(0);
        assert_eq!((kept.len(), denials.count()), (KEPT, 200));
        assert_eq!(kept[0].subject, "s.136");
    }
}
