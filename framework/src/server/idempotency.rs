//! Idempotent replies: a request that carries an `Idempotency-Key`, to an endpoint that keeps
//! replies ([`EndpointOptions::idempotent_replies`](super::EndpointOptions::idempotent_replies)),
//! is handled once; a retry with the same key, on any instance, gets the first reply again.
//!
//! The replies live in a JetStream stream of the service's (`natsrpc_replies_{service}`), one
//! subject per endpoint and key (`natsrpc.replies.{service}.{endpoint}.{key}`), one message per
//! subject, for the endpoint's time to live: a key-value store, kept as a stream because some
//! servers still in use (2.9) answer a bucket's creation in a form the client does not read.
//!
//! 1. The instance that takes a request claims its key: a "pending" message, published expecting
//!    the subject empty. Only one claim can land.
//! 2. A request whose claim does not land reads what is there: a reply (sent again, marked
//!    `Natsrpc-Replayed`), a released claim (claimed again), or a claim still running (503:
//!    retry later). A claim older than twice the endpoint's deadline and half a minute, by the
//!    server's clock, is a dead instance's, and is taken over.
//! 3. The handler's reply is kept in place of the claim (each step lands only on the message it
//!    follows, so no instance overwrites another's). A server error releases the claim, and a
//!    retry runs the request again, as if it had never come. A handler that outlives its
//!    deadline is answered 504 to its caller and waited for: what it ends with is kept.
//!
//! Before it claims anything, a request is decoded and validated: one refused anyway keeps
//! nothing. The stream holds at most 256 MiB, the oldest replies going first, and keeps each for
//! the longest `ttl` of the service's endpoints (set when the stream is first made; change it
//! with `nats stream edit` after).
//!
//! The same key with another body is refused (422, `idempotency_key_reused`): a key names one
//! request, not a slot to put any request in.

use std::time::{Duration, SystemTime};

use async_nats::HeaderMap;
use async_nats::jetstream;
use async_nats::jetstream::context::PublishErrorKind;
use bytes::Bytes;

use super::reply::Dispatched;
use crate::error::{RpcError, ServiceError};
use crate::headers;

/// Header of a kept message: the reply's status, or absent on a claim.
const STATUS: &str = "Natsrpc-Status";
/// Header of a claim: when it was made, in Unix milliseconds.
const PENDING: &str = "Natsrpc-Pending";
/// Header of both: the request body's fingerprint, to tell a reused key.
const FINGERPRINT: &str = "Natsrpc-Fingerprint";
/// Header of a released claim: the request failed on the server's side, and may run again.
const RELEASED: &str = "Natsrpc-Released";

/// The most the replies' stream holds; beyond it the oldest replies go first.
const MAX_BYTES: i64 = 256 * 1024 * 1024;

/// The longest key: keys become a subject's last token.
pub const MAX_KEY: usize = 64;

/// The replies a service keeps.
pub(crate) struct Replies {
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    service: String,
}

/// What a claim found.
pub(crate) enum Claimed {
    /// This instance handles the request; its claim is at this stream sequence.
    Mine(u64),
    /// The first reply, to send again: its headers and body.
    Replay(HeaderMap, Bytes),
    /// Refused: in progress elsewhere, or the key reused for another request.
    Refused(ServiceError),
}

/// Why `key` cannot name a request: 1 to [`MAX_KEY`] characters of A-Z, a-z, 0-9, `_` and `-`.
pub(crate) fn key_problem(key: &str) -> Option<ServiceError> {
    let fine = !key.is_empty()
        && key.len() <= MAX_KEY
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (!fine).then(|| {
        ServiceError::validation(vec![crate::Violation {
            path: headers::IDEMPOTENCY_KEY.to_string(),
            code: "idempotency_key".to_string(),
            message: format!("must be 1 to {MAX_KEY} characters of A-Z, a-z, 0-9, _ and -"),
            params: Default::default(),
        }])
    })
}

/// What a request says, whatever its codec and layout: its body read as a JSON value (whose
/// objects' keys come sorted) and written again, hashed with FNV-1a (64 bits, the same on every
/// instance and release, unlike std's hasher). A retry in MessagePack of a JSON request is the
/// same request. A body that does not decode is hashed as it is (it fails the same way each time).
pub(crate) fn fingerprint(codec: crate::Codec, body: &[u8]) -> u64 {
    let canonical =
        codec.decode::<serde_json::Value>(body).ok().and_then(|value| serde_json::to_vec(&value).ok());
    let bytes = canonical.as_deref().unwrap_or(body);
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

impl Replies {
    /// Makes sure the service's stream exists, its messages kept for `ttl` (the longest of its
    /// endpoints').
    pub(crate) async fn open(
        client: &async_nats::Client,
        service: &str,
        ttl: Duration,
    ) -> Result<Self, RpcError> {
        let js = jetstream::new(client.clone());
        let name = format!("natsrpc_replies_{service}");
        let config = jetstream::stream::Config {
            name: name.clone(),
            description: Some(format!("natsrpc: {service}'s replies to requests with an Idempotency-Key")),
            subjects: vec![format!("natsrpc.replies.{service}.>")],
            max_messages_per_subject: 1,
            max_age: ttl,
            max_bytes: MAX_BYTES,
            duplicate_window: Duration::from_secs(120).min(ttl),
            ..Default::default()
        };
        let stream = js.get_or_create_stream(config).await.map_err(|error| {
            RpcError::transport_explained(format!("could not make the replies' stream {name}"), error)
        })?;
        Ok(Self { js, stream, service: service.to_string() })
    }

    fn subject(&self, endpoint: &str, key: &str) -> String {
        format!("natsrpc.replies.{}.{endpoint}.{key}", self.service)
    }

    /// Claims `key` for a request whose body has `fingerprint`. A claim older than `stale_after`
    /// is taken over.
    pub(crate) async fn claim(
        &self,
        endpoint: &str,
        key: &str,
        fingerprint: u64,
        stale_after: Duration,
    ) -> Result<Claimed, RpcError> {
        let subject = self.subject(endpoint, key);
        if let Some(sequence) = self.publish_claim(&subject, fingerprint, 0).await? {
            return Ok(Claimed::Mine(sequence));
        }
        let found = match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(found) => found,
            // Dropped between the two (a released claim): the retry will claim it.
            Err(_) => return Ok(Claimed::Refused(in_progress())),
        };
        let found_headers = &found.headers;
        let header = |name: &str| found_headers.get(name).map(|v| v.as_str().to_string());
        if header(RELEASED).is_some() {
            // The last attempt failed on the server's side and let go: this one runs, unless
            // another retry claims it first.
            return Ok(match self.publish_claim(&subject, fingerprint, found.sequence).await? {
                Some(sequence) => Claimed::Mine(sequence),
                None => Claimed::Refused(in_progress()),
            });
        }
        if header(FINGERPRINT).and_then(|f| f.parse::<u64>().ok()) != Some(fingerprint) {
            return Ok(Claimed::Refused(ServiceError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used for another request",
            )));
        }
        if header(STATUS).is_some() {
            let mut replay = HeaderMap::new();
            for (name, values) in found_headers.iter() {
                let name: &str = name.as_ref();
                if [STATUS, FINGERPRINT].contains(&name) || name.starts_with("Nats-Expected") {
                    continue;
                }
                for value in values {
                    replay.append(name, value.as_str());
                }
            }
            replay.insert(headers::REPLAYED, "true");
            return Ok(Claimed::Replay(replay, found.payload));
        }
        // The claim's age by the server's clock, which stamped it: one clock for every instance.
        let stamped = u64::try_from(found.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let age = Duration::from_millis(unix_ms().saturating_sub(stamped));
        if age > stale_after
            && let Some(sequence) = self.publish_claim(&subject, fingerprint, found.sequence).await?
        {
            tracing::warn!(service = %self.service, %endpoint, ?age, "took over an abandoned idempotency claim");
            return Ok(Claimed::Mine(sequence));
        }
        Ok(Claimed::Refused(in_progress()))
    }

    /// A claim, landing only if the subject's last message is `after` (0: none): its sequence,
    /// or `None` when another landed first.
    async fn publish_claim(
        &self,
        subject: &str,
        fingerprint: u64,
        after: u64,
    ) -> Result<Option<u64>, RpcError> {
        let claim = jetstream::message::PublishMessage::build()
            .header(PENDING, unix_ms().to_string().as_str())
            .header(FINGERPRINT, fingerprint.to_string().as_str())
            .expected_last_subject_sequence(after);
        self.land(subject, claim).await
    }

    async fn land(
        &self,
        subject: &str,
        message: jetstream::message::PublishMessage,
    ) -> Result<Option<u64>, RpcError> {
        let acked = match self.js.send_publish(subject.to_string(), message).await {
            Ok(ack) => ack.await,
            Err(error) => Err(error),
        };
        match acked {
            Ok(ack) => Ok(Some(ack.sequence)),
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => Ok(None),
            Err(error) => Err(RpcError::transport_explained("could not keep an idempotent reply", error)),
        }
    }

    /// Keeps `reply` in place of the claim at `claimed`. A server error releases the claim
    /// instead, so that a retry runs the request again. (A handler still running at its deadline
    /// is waited for before this: its own ending is what is kept.)
    pub(crate) async fn keep(
        &self,
        endpoint: &str,
        key: &str,
        claimed: u64,
        fingerprint: u64,
        reply: &Dispatched,
    ) {
        let subject = self.subject(endpoint, key);
        if reply.status >= 500 {
            let release = || {
                jetstream::message::PublishMessage::build()
                    .header(RELEASED, unix_ms().to_string().as_str())
                    .header(FINGERPRINT, fingerprint.to_string().as_str())
                    .expected_last_subject_sequence(claimed)
            };
            return self.land_retrying(endpoint, &subject, release).await;
        }
        let message = || kept(reply, fingerprint).expected_last_subject_sequence(claimed);
        self.land_retrying(endpoint, &subject, message).await;
    }

    /// Lands `message` (made afresh for each attempt), trying three times when JetStream does not
    /// answer: an outcome not kept leaves a claim that retries wait on until it goes stale.
    async fn land_retrying(
        &self,
        endpoint: &str,
        subject: &str,
        message: impl Fn() -> jetstream::message::PublishMessage,
    ) {
        let mut wait = Duration::from_millis(50);
        for attempt in 1..=3 {
            match self.land(subject, message()).await {
                Ok(Some(_)) => return,
                Ok(None) => {
                    tracing::warn!(service = %self.service, %endpoint,
                        "an idempotency claim was taken over before its outcome was kept");
                    return;
                }
                Err(error) if attempt == 3 => {
                    tracing::warn!(service = %self.service, %endpoint, %error,
                        "could not keep an idempotent outcome; retries wait until its claim goes stale");
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
    }
}

/// The message that keeps `reply`: its status, the fingerprint, the reply's headers and body.
fn kept(reply: &Dispatched, fingerprint: u64) -> jetstream::message::PublishMessage {
    let mut message = jetstream::message::PublishMessage::build()
        .payload(reply.body.clone())
        .header(STATUS, reply.status.to_string().as_str())
        .header(FINGERPRINT, fingerprint.to_string().as_str())
        .header(headers::CONTENT_TYPE, reply.codec.content_type());
    for (name, values) in reply.nats_headers().iter().flat_map(|h| h.iter()) {
        let name: &str = name.as_ref();
        if name != headers::CONTENT_TYPE {
            for value in values {
                message = message.header(name, value.as_str());
            }
        }
    }
    message
}

fn in_progress() -> ServiceError {
    ServiceError::unavailable("a request with this Idempotency-Key is in progress; retry later")
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
