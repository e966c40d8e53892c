//! Typed events: a service publishes them and declares listeners beside its endpoints.
//!
//! An event type names its subject and its delivery with [`event!`](crate::event):
//!
//! - **core NATS** (fire-and-forget, the fastest): a listener that is not running misses events;
//! - **JetStream**: the stream is made sure of at start, [`Publisher::publish`] waits for the
//!   stream's acknowledgement and sends the event's subject and id as `Nats-Msg-Id` (a retried
//!   publish is de-duplicated), and each listening service has a durable consumer that acknowledges an event
//!   only after its listener succeeded, so no event is lost while a listener is down.
//!
//! An event is decoded (JSON or MessagePack, by its `Content-Type` as a request is) and validated
//! on arrival like a request. A listener that fails (or panics, or gets an
//! invalid event) is logged and counted ([`Service::listener_stats`](crate::Service::listener_stats))
//! and the service carries on; on JetStream a failed event is delivered again, up to
//! [`MAX_DELIVER`] times, and then, like an invalid one at once, kept as a dead letter (see
//! [`dead_letter_stream`]) rather than dropped. A listener that fails with
//! [`ServiceError::unavailable`] (what it needs is down, the event is not at fault; not any
//! 503, such as a business one) has the event delivered again after a growing pause (up to
//! [`TRANSIENT_PAUSE_MAX`]) for as long as that lasts: an hour-long database outage
//! dead-letters nothing. Those deliveries count towards [`MAX_DELIVER`] too, so an event that
//! then fails for another reason is given up at once. The streams natsrpc makes keep events for
//! [`STREAM_MAX_AGE`] and at most [`STREAM_MAX_MESSAGES`], the oldest going first, so that a
//! stream never fills the server; a stream that already exists keeps the limits its operator gave
//! it. On a NATS cluster, set `NATS_STREAM_REPLICAS` (see [`stream_replicas`]) so that the streams
//! natsrpc makes outlive the loss of a server.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize, validator::Validate)]
//! struct OrderPlaced {
//!     #[validate(length(min = 1))]
//!     order_id: String,
//!     amount_cents: u64,
//! }
//! natsrpc::event!(OrderPlaced, subject = "events.shop.order_placed", id = order_id, jetstream = "SHOP_EVENTS");
//!
//! async fn count_revenue(event: OrderPlaced) -> Result<(), natsrpc::ServiceError> {
//!     println!("{} paid {}", event.order_id, event.amount_cents);
//!     Ok(())
//! }
//! let analytics = natsrpc::Service::builder("analytics", "1.0.0").listener(count_revenue);
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::{Client, HeaderMap, Subject};
use futures::{FutureExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use validator::Validate;

use crate::error::{RpcError, ServiceError};
use crate::headers;
use crate::server::{FromContext, RequestContext, RequestHead};

/// Deliveries of one JetStream event to one service before it is given up, unless its listener
/// said each time that the failure was not the event's ([`ServiceError::unavailable`]).
pub const MAX_DELIVER: i64 = 5;

/// The longest pause before an event whose listener was unavailable comes again: the pause doubles
/// from half a second up to this, so that a listener whose database is down is not asked many
/// times a second per event, and a backlog drains within this once it is back.
pub const TRANSIENT_PAUSE_MAX: Duration = Duration::from_secs(5);

/// How long an event stream (and its dead letters' stream) that natsrpc makes keeps an event: a
/// listener down for longer misses what is older.
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most events a stream that natsrpc makes holds; the oldest go first. A count rather than a
/// size: nats-server sets a stream's `max_bytes` aside on its disk at once, and refuses the stream
/// when that does not fit.
pub const STREAM_MAX_MESSAGES: i64 = 10_000_000;

/// The variable that sets how many servers of a cluster keep each stream natsrpc makes.
pub const STREAM_REPLICAS_VARIABLE: &str = "NATS_STREAM_REPLICAS";

/// How many servers keep each stream natsrpc makes: `NATS_STREAM_REPLICAS`, 1 to 5 (JetStream's
/// bound), 1 when unset. On a three-server cluster, 3 lets a stream lose one server and go on
/// taking events (after its leader, if lost, is elected again); 1 keeps it on one server, gone
/// with it. A stream that exists already keeps its own count, as it keeps its limits.
///
/// ```
/// let replicas = natsrpc::events::stream_replicas()?;
/// assert!((1..=5).contains(&replicas));
/// # Ok::<(), natsrpc::settings::SettingError>(())
/// ```
pub fn stream_replicas() -> Result<usize, crate::settings::SettingError> {
    const EXPECTED: &str = "a number of servers from 1 to 5";
    let replicas: usize = crate::settings::env_or(STREAM_REPLICAS_VARIABLE, 1, EXPECTED)?;
    if (1..=5).contains(&replicas) {
        Ok(replicas)
    } else {
        Err(crate::settings::SettingError {
            name: STREAM_REPLICAS_VARIABLE.to_string(),
            value: replicas.to_string(),
            expected: EXPECTED,
        })
    }
}

/// The stream that keeps `stream`'s dead letters: each event a listening service could not handle,
/// on `dead.{subject}`, its body as it arrived and its headers, plus why
/// ([`DEAD_REASON`]), which durable consumer gave up ([`DEAD_CONSUMER`]) and after how many
/// deliveries ([`DEAD_DELIVERED`]). Read them with any NATS client; replay one by publishing its
/// body to the event's subject again.
pub fn dead_letter_stream(stream: &str) -> String {
    format!("{stream}_DEAD")
}

/// Header of a dead letter: why it could not be handled (escaped).
pub const DEAD_REASON: &str = "Natsrpc-Dead-Reason";
/// Header of a dead letter: the durable consumer (`{service}_{subject}`) that gave it up.
pub const DEAD_CONSUMER: &str = "Natsrpc-Dead-Consumer";
/// Header of a dead letter: how many times it was delivered.
pub const DEAD_DELIVERED: &str = "Natsrpc-Dead-Delivered";

/// How an event type travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Core NATS: at most once, to the listeners running at the time.
    Core,
    /// JetStream, in `stream`: at least once per listening service, de-duplicated on publish.
    JetStream {
        /// The stream's name.
        stream: &'static str,
    },
}

/// An event type. Implement it with [`event!`](crate::event).
pub trait Event: Serialize + DeserializeOwned + Validate + Send + Sync + 'static {
    /// Where it is published, such as `events.shop.order_placed`.
    const SUBJECT: &'static str;
    /// How it travels.
    const DELIVERY: Delivery;

    /// Its id: the same event published twice has the same id.
    fn event_id(&self) -> String;
}

/// Makes a type an [`Event`]: `event!(OrderPlaced, subject = "events.shop.order_placed", id =
/// order_id)` for core NATS, with `, jetstream = "STREAM"` for JetStream.
#[macro_export]
macro_rules! event {
    ($ty:ty, subject = $subject:literal, id = $id:ident) => {
        impl $crate::events::Event for $ty {
            const SUBJECT: &'static str = $subject;
            const DELIVERY: $crate::events::Delivery = $crate::events::Delivery::Core;
            fn event_id(&self) -> ::std::string::String {
                self.$id.to_string()
            }
        }
    };
    ($ty:ty, subject = $subject:literal, id = $id:ident, jetstream = $stream:literal) => {
        impl $crate::events::Event for $ty {
            const SUBJECT: &'static str = $subject;
            const DELIVERY: $crate::events::Delivery =
                $crate::events::Delivery::JetStream { stream: $stream };
            fn event_id(&self) -> ::std::string::String {
                self.$id.to_string()
            }
        }
    };
}

/// Publishes events, in JSON unless told otherwise ([`Publisher::with_codec`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    nats: Client,
    jetstream: jetstream::Context,
    codec: crate::Codec,
    /// The (stream, subject) pairs made sure of, so that only the first publish asks.
    ensured: Arc<Mutex<std::collections::HashSet<(&'static str, &'static str)>>>,
}

impl Publisher {
    /// A publisher on `nats`.
    pub fn new(nats: Client) -> Self {
        let jetstream = jetstream::new(nats.clone());
        Self { nats, jetstream, codec: crate::Codec::Json, ensured: Arc::default() }
    }

    /// Publishes in `codec`: listeners read each event's codec from its `Content-Type`, as
    /// endpoints read a request's, so MessagePack events need nothing of them.
    pub fn with_codec(mut self, codec: crate::Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Validates and publishes `event`; on JetStream, waits until the stream has it.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<(), RpcError> {
        self.send(event, None).await
    }

    /// [`publish`](Self::publish), for an event that a request being handled (`ctx`) gives rise
    /// to: the event carries the request's correlation id and trace, so a listener's logs and
    /// spans join the request's.
    pub async fn publish_within<E: Event>(
        &self,
        ctx: &crate::RequestContext,
        event: &E,
    ) -> Result<(), RpcError> {
        self.send(event, Some(ctx)).await
    }

    async fn send<E: Event>(
        &self,
        event: &E,
        within: Option<&crate::RequestContext>,
    ) -> Result<(), RpcError> {
        if let Err(errors) = event.validate() {
            let violations = crate::validation::violations(&errors);
            return Err(RpcError::Validation {
                message: format!("invalid {} event", E::SUBJECT),
                violations,
            });
        }
        let payload = self.codec.encode(event).map_err(RpcError::Encode)?;
        let mut headers = HeaderMap::new();
        headers.insert(headers::CONTENT_TYPE, self.codec.content_type());
        // Per event type: an order's `placed` and `cancelled` events share its id and a stream.
        headers::insert(&mut headers, "Nats-Msg-Id", &format!("{}:{}", E::SUBJECT, event.event_id()));
        if let Some(ctx) = within {
            headers::insert(&mut headers, headers::CORRELATION_ID, ctx.correlation_id());
            headers.insert(headers::TRACEPARENT, ctx.trace().traceparent().as_str());
        }
        match E::DELIVERY {
            Delivery::Core => self
                .nats
                .publish_with_headers(E::SUBJECT, headers, payload.into())
                .await
                .map_err(RpcError::transport),
            Delivery::JetStream { stream } => {
                let known = self.ensured.lock().is_ok_and(|e| e.contains(&(stream, E::SUBJECT)));
                if !known {
                    ensure_stream(&self.jetstream, stream, E::SUBJECT).await?;
                    if let Ok(mut ensured) = self.ensured.lock() {
                        ensured.insert((stream, E::SUBJECT));
                    }
                }
                let ack = self
                    .jetstream
                    .publish_with_headers(E::SUBJECT, headers, payload.into())
                    .await
                    .map_err(RpcError::transport)?;
                ack.await.map(|_| ()).map_err(RpcError::transport)
            }
        }
    }
}

/// Makes sure `stream` exists and takes `subject`; one it makes has limits ([`STREAM_MAX_AGE`],
/// [`STREAM_MAX_MESSAGES`]) and [`stream_replicas`], one that exists keeps its own (its
/// operator's choice, which natsrpc cannot tell from an oversight, and shortening it would drop
/// events).
async fn ensure_stream(js: &jetstream::Context, stream: &str, subject: &str) -> Result<(), RpcError> {
    let replicas = stream_replicas().map_err(|error| RpcError::config(error.to_string()))?;
    let config = jetstream::stream::Config {
        num_replicas: replicas,
        name: stream.to_string(),
        subjects: vec![subject.to_string()],
        // Two minutes of retried publishes are recognised as the same event.
        duplicate_window: Duration::from_secs(120),
        max_age: STREAM_MAX_AGE,
        max_messages: STREAM_MAX_MESSAGES,
        ..Default::default()
    };
    let mut existing = js.get_or_create_stream(config).await.map_err(RpcError::transport)?;
    let info = existing.info().await.map_err(RpcError::transport)?;
    if !info.config.subjects.iter().any(|s| s == subject) {
        let mut config = info.config.clone();
        config.subjects.push(subject.to_string());
        js.update_stream(config).await.map_err(RpcError::transport)?;
    }
    Ok(())
}

/// Where one JetStream listener's dead letters go.
struct DeadLetters {
    js: jetstream::Context,
    durable: String,
}

impl DeadLetters {
    /// Keeps `message` as a dead letter, waiting for the stream's acknowledgement. Its id is the
    /// consumer's and the stream sequence's, so that one kept twice (a redelivery racing the
    /// first) is kept once, and two services giving up the same event keep one each.
    async fn keep(
        &self,
        message: &jetstream::Message,
        why: &str,
        delivered: i64,
        sequence: Option<u64>,
    ) -> Result<(), RpcError> {
        // The event's own headers, but none of JetStream's (an expected stream or sequence would
        // make the dead letter's publish fail, and its message id is the event's).
        let mut dead = HeaderMap::new();
        for (name, values) in message.headers.iter().flat_map(|headers| headers.iter()) {
            let name: &str = name.as_ref();
            if !name.get(..5).is_some_and(|start| start.eq_ignore_ascii_case("nats-")) {
                for value in values {
                    dead.append(name, value.as_str());
                }
            }
        }
        headers::insert(&mut dead, DEAD_REASON, why);
        headers::insert(&mut dead, DEAD_CONSUMER, &self.durable);
        dead.insert(DEAD_DELIVERED, delivered.to_string().as_str());
        // Without its sequence (never seen: the server always sends it), an id of its own.
        let sequence = sequence.map_or_else(|| nuid::next().to_string(), |sequence| sequence.to_string());
        dead.insert("Nats-Msg-Id", format!("{}:{sequence}", self.durable).as_str());
        let subject = format!("dead.{}", message.subject);
        let ack = self
            .js
            .publish_with_headers(subject, dead, message.payload.clone())
            .await
            .map_err(RpcError::transport)?;
        ack.await.map(|_| ()).map_err(RpcError::transport)
    }

    /// Keeps `message` as a dead letter and answers the acknowledgement that ends its deliveries;
    /// when the dead letter could not be kept and deliveries are left, it comes again instead.
    async fn give_up(&self, message: &jetstream::Message, why: &str, delivery: Delivered) -> AckKind {
        match self.keep(message, why, delivery.count, delivery.sequence).await {
            Ok(()) => AckKind::Term,
            Err(error) if delivery.count < MAX_DELIVER => {
                tracing::warn!(%error, durable = %self.durable, "could not keep a dead letter; the event comes again");
                AckKind::Nak(Some(Duration::from_secs(1)))
            }
            Err(error) => {
                // Still in the event stream, until its limits take it.
                tracing::error!(%error, durable = %self.durable, "could not keep a dead letter");
                AckKind::Term
            }
        }
    }
}

/// How often an event was delivered, and where it is in its stream.
#[derive(Debug, Clone, Copy)]
struct Delivered {
    count: i64,
    sequence: Option<u64>,
}

impl Delivered {
    /// From the message's metadata. Without it (never seen: the server always sends it) the
    /// event counts as on its last delivery, so that a failure keeps it as a dead letter at once
    /// rather than letting it run out of deliveries unseen.
    fn of(message: &jetstream::Message) -> Self {
        match message.info() {
            Ok(info) => Self { count: info.delivered, sequence: Some(info.stream_sequence) },
            Err(_) => Self { count: MAX_DELIVER, sequence: None },
        }
    }
}

/// Implemented for every `async fn (State<S>?, RequestContext?, E) -> Result<(), impl
/// Into<ServiceError>>`; `T` only tells the shapes apart.
pub trait Listener<T, S>: Clone + Send + Sync + 'static {
    /// The event it listens to.
    type Event: Event;

    /// Runs the listener on a validated event.
    fn call(
        &self,
        event: Self::Event,
        ctx: &RequestContext,
        state: &S,
    ) -> impl Future<Output = Result<(), ServiceError>> + Send + 'static;
}

macro_rules! impl_listener {
    ($($arg:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, S, Ev, Er, $($arg,)*> Listener<($($arg,)* Ev,), S> for F
        where
            F: Fn($($arg,)* Ev) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Result<(), Er>> + Send + 'static,
            Ev: Event,
            Er: Into<ServiceError>,
            $($arg: FromContext<S>,)*
        {
            type Event = Ev;

            fn call(&self, event: Ev, ctx: &RequestContext, state: &S) -> impl Future<Output = Result<(), ServiceError>> + Send + 'static {
                $(let $arg = $arg::from_context(ctx, state);)*
                let fut = (self)($($arg,)* event);
                async move { fut.await.map_err(Into::into) }
            }
        }
    };
}

impl_listener!();
impl_listener!(A1);
impl_listener!(A1, A2);

/// What a listener has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ListenerStats {
    /// The event's subject.
    pub subject: String,
    /// Events that arrived.
    pub received: u64,
    /// Events the listener handled.
    pub handled: u64,
    /// Events the listener failed on (or panicked on).
    pub failed: u64,
    /// Events that could not be decoded or broke a validation rule.
    pub invalid: u64,
    /// The last failure, for the log's sake.
    pub last_error: String,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    received: AtomicU64,
    handled: AtomicU64,
    failed: AtomicU64,
    invalid: AtomicU64,
    last_error: Mutex<String>,
    /// Deliveries failed as unavailable since the listener last handled one: logged when the
    /// streak begins and ends, not once per event (thousands a second while a database is down).
    unavailable: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self, subject: &str) -> ListenerStats {
        ListenerStats {
            subject: subject.to_string(),
            received: self.received.load(Ordering::Relaxed),
            handled: self.handled.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            last_error: self.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }

    /// Counts a failure and keeps it as the last; answers its text, escaped.
    fn fail(&self, counter: &AtomicU64, subject: &str, error: &str) -> String {
        let error = self.keep(counter, error);
        tracing::error!(subject, %error, "listener failed");
        error
    }

    /// Counts a failure of a listener that is unavailable (what it needs is down): logged when
    /// a streak of them begins; answers its text, escaped.
    fn unavailable(&self, subject: &str, error: &str) -> String {
        let error = self.keep(&self.failed, error);
        if self.unavailable.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(subject, %error, "listener unavailable; its events wait and come again");
        } else {
            tracing::debug!(subject, %error, "listener still unavailable");
        }
        error
    }

    /// Counts an event handled; ends a streak of unavailable deliveries, saying how long it was.
    fn handled(&self, subject: &str) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        let failed = self.unavailable.swap(0, Ordering::Relaxed);
        if failed > 0 {
            tracing::info!(subject, failed, "listener available again");
        }
    }

    fn keep(&self, counter: &AtomicU64, error: &str) -> String {
        counter.fetch_add(1, Ordering::Relaxed);
        // An event's text may be anybody's who could publish on the subject.
        let error = crate::escape::header_value(error).into_owned();
        if let Ok(mut last) = self.last_error.lock() {
            last.clone_from(&error);
        }
        error
    }
}

/// What happened to one event, and why when it failed (escaped).
enum Outcome {
    Handled,
    /// The listener failed: `transient` when it said the event was not at fault
    /// ([`ServiceError::unavailable`]).
    Failed {
        why: String,
        transient: bool,
    },
    Invalid(String),
}

/// Decodes, validates and hands one event to its listener, counting what happened. A panic
/// anywhere in that fails this event only.
async fn deliver<L, T, S>(
    listener: &L,
    state: &S,
    counters: &Counters,
    subject: Subject,
    headers: Option<HeaderMap>,
    payload: &[u8],
) -> Outcome
where
    L: Listener<T, S>,
{
    let delivering = async {
        counters.received.fetch_add(1, Ordering::Relaxed);
        // The same head and the same decoding and validation as a request's.
        let head = RequestHead::from_nats(subject.clone(), headers);
        // Validated in every build (the validation-off control is about requests), and untimed:
        // a listener's stats keep no timings.
        let decoded = head.codec(payload).and_then(|codec| crate::server::decode_valid(codec, payload, None));
        let event: L::Event = match decoded {
            Ok(event) => event,
            Err(refused) if refused.kind == crate::ErrorKind::Validation => {
                let paths: Vec<&str> = refused.violations.iter().map(|v| v.path.as_str()).collect();
                let why = format!("invalid event at {}", paths.join(", "));
                return Outcome::Invalid(counters.fail(&counters.invalid, head.subject(), &why));
            }
            Err(refused) => {
                let why = format!("undecodable event: {}", refused.message);
                return Outcome::Invalid(counters.fail(&counters.invalid, head.subject(), &why));
            }
        };
        let ctx = RequestContext::new(head);
        match listener.call(event, &ctx, state).await {
            Ok(()) => {
                counters.handled(&subject);
                Outcome::Handled
            }
            Err(error) if error.kind == crate::ErrorKind::Unavailable => {
                Outcome::Failed { why: counters.unavailable(&subject, &error.to_string()), transient: true }
            }
            Err(error) => Outcome::Failed {
                why: counters.fail(&counters.failed, &subject, &error.to_string()),
                transient: false,
            },
        }
    };
    match AssertUnwindSafe(delivering).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failed {
            why: counters.fail(&counters.failed, &subject, "the listener panicked"),
            transient: false,
        },
    }
}

/// Starts listening: answers the task that listens until `stop` is cancelled.
///
/// The subscription (or JetStream consumer) is made here, so that a service does not start without
/// it; should it end later for any other reason than the stop (a consumer deleted on the server, a
/// stream that keeps failing), the task makes it again, with a growing pause between tries.
pub(crate) async fn start<L, T, S>(
    listener: L,
    state: Arc<S>,
    client: &Client,
    service: &str,
    queue_group: &str,
    counters: Arc<Counters>,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, RpcError>
where
    L: Listener<T, S>,
    S: Send + Sync + 'static,
    T: 'static,
{
    let source = Source::<L::Event> {
        client: client.clone(),
        // A queue group per service: each event reaches one instance of each listening service.
        queue_group: format!("{service}.{queue_group}"),
        durable: format!("{service}_{}", L::Event::SUBJECT.replace(['.', '*', '>'], "_")),
        event: std::marker::PhantomData,
    };
    let mut events = source.open().await?;
    Ok(tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            let listening = std::time::Instant::now();
            let ended = listen(&mut events, &listener, &state, &counters, &stop).await;
            if stop.is_cancelled() {
                return;
            }
            if listening.elapsed() > crate::server::HEALTHY_RUN {
                backoff = Duration::from_millis(50);
            }
            tracing::error!(
                subject = L::Event::SUBJECT,
                why = ended,
                ?backoff,
                "a listener's subscription ended; opening it again"
            );
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                match source.open().await {
                    Ok(opened) => break events = opened,
                    Err(error) => {
                        tracing::warn!(subject = L::Event::SUBJECT, %error, "could not open a listener's subscription")
                    }
                }
            }
        }
    }))
}

/// Where one event type's messages come from, and how to open that source again.
struct Source<E> {
    client: Client,
    queue_group: String,
    durable: String,
    event: std::marker::PhantomData<fn() -> E>,
}

/// An open source of events.
enum Events {
    Core(async_nats::Subscriber),
    JetStream(Box<(pull::Stream, DeadLetters)>),
}

/// A JetStream consumer's messages failing this many times in a row are given up and opened again.
const MAX_STREAM_ERRORS: u32 = 5;

impl<E: Event> Source<E> {
    async fn open(&self) -> Result<Events, RpcError> {
        match E::DELIVERY {
            Delivery::Core => Ok(Events::Core(
                self.client
                    .queue_subscribe(E::SUBJECT, self.queue_group.clone())
                    .await
                    .map_err(RpcError::transport)?,
            )),
            Delivery::JetStream { stream } => {
                let js = jetstream::new(self.client.clone());
                ensure_stream(&js, stream, E::SUBJECT).await?;
                ensure_stream(&js, &dead_letter_stream(stream), &format!("dead.{}", E::SUBJECT)).await?;
                let config = pull::Config {
                    durable_name: Some(self.durable.clone()),
                    ack_policy: AckPolicy::Explicit,
                    filter_subject: E::SUBJECT.to_string(),
                    // Unbounded on the server: the listener gives an event up itself (after
                    // MAX_DELIVER failures of the event's own), and one whose failures are
                    // transient must never stop coming.
                    max_deliver: -1,
                    ..Default::default()
                };
                let stream = js.get_stream(stream).await.map_err(RpcError::transport)?;
                let mut consumer = stream
                    .get_or_create_consumer(&self.durable, config.clone())
                    .await
                    .map_err(RpcError::transport)?;
                if consumer.cached_info().config.max_deliver != -1 {
                    // Made by an earlier version, whose server-side bound would strand an event
                    // that failed transiently too often: updated in place.
                    match stream.create_consumer(config).await {
                        Ok(updated) => consumer = updated,
                        Err(error) => {
                            tracing::warn!(%error, durable = %self.durable, "could not lift a consumer's max_deliver")
                        }
                    }
                }
                let messages = consumer.messages().await.map_err(RpcError::transport)?;
                let dead = DeadLetters { js, durable: self.durable.clone() };
                Ok(Events::JetStream(Box::new((messages, dead))))
            }
        }
    }
}

/// The pause before delivery `count + 1` of an event whose listener was unavailable: half a second,
/// doubling, up to [`TRANSIENT_PAUSE_MAX`].
fn transient_pause(count: i64) -> Duration {
    let doublings = u32::try_from(count.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    Duration::from_millis(500).saturating_mul(1 << doublings).min(TRANSIENT_PAUSE_MAX)
}

/// Delivers events until `stop` (answering `""`) or until the source ends (answering why).
async fn listen<L, T, S>(
    events: &mut Events,
    listener: &L,
    state: &S,
    counters: &Counters,
    stop: &CancellationToken,
) -> &'static str
where
    L: Listener<T, S>,
{
    match events {
        Events::Core(events) => loop {
            let message = tokio::select! {
                () = stop.cancelled() => return "",
                message = events.next() => message,
            };
            let Some(message) = message else { return "the subscription ended" };
            deliver(listener, state, counters, message.subject, message.headers, &message.payload).await;
        },
        Events::JetStream(jetstream) => {
            let (events, dead) = &mut **jetstream;
            let durable = dead.durable.as_str();
            let mut errors = 0;
            loop {
                let message = tokio::select! {
                    () = stop.cancelled() => return "",
                    message = events.next() => message,
                };
                let message = match message {
                    Some(Ok(message)) => message,
                    Some(Err(error)) => {
                        tracing::warn!(%error, durable, "event stream error");
                        errors += 1;
                        if errors >= MAX_STREAM_ERRORS {
                            return "its consumer kept failing";
                        }
                        continue;
                    }
                    None => return "its consumer's messages ended",
                };
                errors = 0;
                let outcome = deliver(
                    listener,
                    state,
                    counters,
                    message.subject.clone(),
                    message.headers.clone(),
                    &message.payload,
                )
                .await;
                let delivery = Delivered::of(&message);
                let ack = match outcome {
                    Outcome::Handled => AckKind::Ack,
                    // Not the event's fault: again, after a pause that grows with each try.
                    Outcome::Failed { transient: true, .. } => {
                        AckKind::Nak(Some(transient_pause(delivery.count)))
                    }
                    // Again a little later, up to MAX_DELIVER times.
                    Outcome::Failed { .. } if delivery.count < MAX_DELIVER => {
                        AckKind::Nak(Some(Duration::from_millis(500)))
                    }
                    Outcome::Failed { why, .. } => {
                        let why =
                            format!("the listener failed on each of {} deliveries: {why}", delivery.count);
                        dead.give_up(&message, &why, delivery).await
                    }
                    // Never valid, however often delivered.
                    Outcome::Invalid(why) => dead.give_up(&message, &why, delivery).await,
                };
                if let Err(error) = message.ack_with(ack).await {
                    tracing::warn!(%error, durable, "could not acknowledge an event");
                }
            }
        }
    }
}
