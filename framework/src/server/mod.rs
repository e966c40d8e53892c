//! Serving: a [`ServiceBuilder`] collects endpoints and limits, [`ServiceBuilder::start`] subscribes
//! them on NATS, and the returned [`Service`] stops gracefully.
//!
//! One request, from the wire and back:
//! 1. `serve` receives it on the service's queue subscription `{name}.>`;
//! 2. the `Router` finds the endpoint by subject (or answers 404);
//! 3. `Endpoint::admit` takes one of the endpoint's in-flight places (or answers 503);
//! 4. the endpoint's pipeline (`endpoint.rs`) decodes, validates, runs the handler and encodes: in
//!    place when it can finish at once, on a task of its own when the handler waits;
//! 5. the reply is published to the request's reply subject.
//!
//! Layout: `context` (handler arguments), `handler` (the `async fn` shapes), `endpoint` (the
//! pipeline), `router`, `stats`, `discovery` (`$SRV.*`), `shutdown` (signals), `dispatcher` (the
//! pipeline without NATS, for other transports and tests).

mod context;
mod discovery;
mod dispatcher;
mod endpoint;
mod handler;
mod router;
mod shutdown;
mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_nats::{Client, Message, Subject};
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use context::{FromContext, RequestContext, State};
pub use dispatcher::{Dispatched, Dispatcher};
pub use endpoint::EndpointOptions;
pub use handler::Handler;
pub use shutdown::shutdown_signal;

pub(crate) use endpoint::{Endpoint, Incoming, Outgoing};
pub(crate) use router::{Begun, Router, ServiceIdentity};
use stats::EndpointStats;

use crate::contract::{Request, is_valid_name};
use crate::error::{RpcError, ServiceError};
use crate::headers;

/// The queue group of every endpoint unless set: the Services API's default.
pub const DEFAULT_QUEUE_GROUP: &str = "q";
/// Requests handled at once per endpoint unless set.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// How long a handler may run unless set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

type MakeEndpoint = Box<dyn FnOnce(&Defaults) -> Endpoint + Send>;

/// What a listener needs to start, once the service has a connection.
struct ListenerStart {
    client: Client,
    service: String,
    queue_group: String,
    counters: Arc<crate::events::Counters>,
    stop: CancellationToken,
}

type Listening = std::pin::Pin<Box<dyn Future<Output = Result<JoinHandle<()>, RpcError>> + Send>>;
type StartListener = Box<dyn FnOnce(ListenerStart) -> Listening + Send>;

/// Service-wide defaults that endpoints inherit.
struct Defaults {
    service: String,
    max_in_flight: usize,
    timeout: Duration,
    max_payload: Option<usize>,
}

/// Builds a service: its identity, its endpoints, its limits.
///
/// ```no_run
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, validator::Validate)] struct Ping {}
/// # #[derive(Serialize, Deserialize)] struct Pong {}
/// # natsrpc::request!(Ping => Pong, service = "pinger", endpoint = "ping");
/// # async fn ping(_: Ping) -> Result<Pong, natsrpc::ServiceError> { Ok(Pong {}) }
/// # async fn run() -> Result<(), natsrpc::RpcError> {
/// let nats = natsrpc::connect("nats://127.0.0.1:4222").await?;
/// let service = natsrpc::Service::builder("pinger", "1.0.0")
///     .description("Answers pings")
///     .max_in_flight(256)
///     .endpoint(ping)
///     .start(&nats)
///     .await?;
/// service.run_until(natsrpc::shutdown_signal(), std::time::Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until started"]
pub struct ServiceBuilder<S = ()> {
    name: String,
    version: String,
    description: String,
    metadata: BTreeMap<String, String>,
    queue_group: String,
    max_in_flight: usize,
    timeout: Duration,
    max_payload: Option<usize>,
    receivers: usize,
    state: Arc<S>,
    endpoints: Vec<(String, MakeEndpoint)>,
    listeners: Vec<(&'static str, StartListener)>,
}

impl ServiceBuilder<()> {
    fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            description: String::new(),
            metadata: BTreeMap::new(),
            queue_group: DEFAULT_QUEUE_GROUP.to_string(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            timeout: DEFAULT_TIMEOUT,
            max_payload: None,
            receivers: 1,
            state: Arc::new(()),
            endpoints: Vec::new(),
            listeners: Vec::new(),
        }
    }
}

impl<S: Send + Sync + 'static> ServiceBuilder<S> {
    /// A sentence for `nats micro info`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Service metadata for `$SRV.INFO`, `PING` and `STATS`.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The queue group instances share the load in (default `q`).
    pub fn queue_group(mut self, group: impl Into<String>) -> Self {
        self.queue_group = group.into();
        self
    }

    /// Default bound on requests handled at once per endpoint (default 1024).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Default handler deadline (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest request body accepted, in bytes; larger ones get 413. The NATS server's own
    /// `max_payload` applies regardless.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Subscriptions (in the service's queue group) that take requests in, each with its own task
    /// (default 1). A receiving task decodes and validates each request and runs its handler
    /// until the handler first waits; more of them spread that work over more cores.
    pub fn receivers(mut self, n: usize) -> Self {
        self.receivers = n.max(1);
        self
    }

    /// Sets the shared state handlers take with [`State`]. Endpoints added before keep the state
    /// they were added with.
    pub fn state<T: Send + Sync + 'static>(self, state: T) -> ServiceBuilder<T> {
        ServiceBuilder {
            name: self.name,
            version: self.version,
            description: self.description,
            metadata: self.metadata,
            queue_group: self.queue_group,
            max_in_flight: self.max_in_flight,
            timeout: self.timeout,
            max_payload: self.max_payload,
            receivers: self.receivers,
            state: Arc::new(state),
            endpoints: self.endpoints,
            listeners: self.listeners,
        }
    }

    /// Adds an endpoint with the service's default limits. Its name and subject come from the
    /// handler's request type.
    pub fn endpoint<H, T>(self, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.endpoint_with(handler, EndpointOptions::new())
    }

    /// Adds an endpoint with its own limits and metadata.
    pub fn endpoint_with<H, T>(mut self, handler: H, options: EndpointOptions) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let state = Arc::clone(&self.state);
        let name = <H::Request as Request>::ENDPOINT.to_string();
        let make: MakeEndpoint = Box::new(move |defaults: &Defaults| {
            let limits = endpoint::Limits {
                service: defaults.service.clone(),
                name: <H::Request as Request>::ENDPOINT.to_string(),
                timeout: options.timeout.unwrap_or(defaults.timeout),
                max_payload: defaults.max_payload,
                max_in_flight: options.max_in_flight.unwrap_or(defaults.max_in_flight),
                stats: EndpointStats::new(),
                in_flight: AtomicUsize::new(0),
            };
            let mut metadata = <H::Request as Request>::endpoint_metadata();
            metadata.extend(options.metadata);
            Endpoint::new(handler, state, limits, metadata)
        });
        // The request type's service name must be this service's: checked in `router()`.
        let service_of_type = <H::Request as Request>::SERVICE.to_string();
        self.endpoints.push((format!("{service_of_type}.{name}"), make));
        self
    }

    /// Adds a listener of a typed event (see [`crate::events`]): an `async fn` whose last
    /// argument is the event, with [`State`] and [`RequestContext`] before it when it wants them.
    /// Listeners run when the service is started on NATS, not in a [`Dispatcher`].
    pub fn listener<L, T>(mut self, listener: L) -> Self
    where
        L: crate::events::Listener<T, S>,
        T: 'static,
    {
        let state = Arc::clone(&self.state);
        let start: StartListener = Box::new(move |s: ListenerStart| {
            Box::pin(async move {
                crate::events::start(
                    listener,
                    state,
                    &s.client,
                    &s.service,
                    &s.queue_group,
                    s.counters,
                    s.stop,
                )
                .await
            })
        });
        self.listeners.push((<L::Event as crate::events::Event>::SUBJECT, start));
        self
    }

    /// Checks the configuration and builds the routing table (no NATS involved).
    pub(crate) fn router(self) -> Result<Router, RpcError> {
        if !is_valid_name(&self.name) {
            return Err(RpcError::Config(format!(
                "service name {:?} must be non-empty and use only A-Z, a-z, 0-9, _ and -",
                self.name
            )));
        }
        if !is_semver(&self.version) {
            return Err(RpcError::Config(format!(
                "service version {:?} is not semantic (1.2.3)",
                self.version
            )));
        }
        let defaults = Defaults {
            service: self.name.clone(),
            max_in_flight: self.max_in_flight,
            timeout: self.timeout,
            max_payload: self.max_payload,
        };
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(self.endpoints.len());
        for (subject, make) in self.endpoints {
            let (service, name) = subject.split_once('.').unwrap_or_default();
            if service != self.name {
                return Err(RpcError::Config(format!(
                    "endpoint `{name}` belongs to service `{service}`, not `{}`",
                    self.name
                )));
            }
            if !is_valid_name(name) {
                return Err(RpcError::Config(format!(
                    "endpoint name {name:?} must use only A-Z, a-z, 0-9, _ and -"
                )));
            }
            if endpoints.iter().any(|e| e.subject == subject) {
                return Err(RpcError::Config(format!("endpoint `{name}` is registered twice")));
            }
            endpoints.push(make(&defaults));
        }
        let identity = ServiceIdentity {
            name: self.name,
            id: nuid::next().to_string(),
            version: self.version,
            description: self.description,
            metadata: self.metadata,
            queue_group: self.queue_group,
            started: now_rfc3339(),
        };
        Ok(Router::new(identity, endpoints))
    }

    /// What a service binary's `main` does: connects to `$NATS_URL` (default
    /// `nats://127.0.0.1:4222`), starts the service, serves until SIGINT or SIGTERM, then drains,
    /// giving requests in flight up to 10 seconds.
    pub async fn run(self) -> Result<StopReport, RpcError> {
        let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string());
        let nats = crate::connect(&url).await?;
        let service = self.start(&nats).await?;
        service.run_until(shutdown_signal(), Duration::from_secs(10)).await
    }

    /// Subscribes the endpoints and the Services API subjects, and starts serving.
    pub async fn start(mut self, client: &Client) -> Result<Service, RpcError> {
        let receivers = self.receivers;
        let starting = std::mem::take(&mut self.listeners);
        let router = Arc::new(self.router()?);
        let identity = &router.service;
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let max_reply = client.server_info().max_payload;
        let mut serving = Vec::with_capacity(receivers);
        for _ in 0..receivers {
            let requests = client
                .queue_subscribe(format!("{}.>", identity.name), identity.queue_group.clone())
                .await
                .map_err(RpcError::transport)?;
            serving.push(tokio::spawn(serve(
                requests,
                Arc::clone(&router),
                client.clone(),
                tracker.clone(),
                stop.clone(),
                max_reply,
            )));
        }
        let mut listeners = Vec::with_capacity(starting.len());
        let mut listening = Vec::with_capacity(starting.len());
        for (subject, start) in starting {
            let counters = Arc::new(crate::events::Counters::default());
            let started = start(ListenerStart {
                client: client.clone(),
                service: identity.name.clone(),
                queue_group: identity.queue_group.clone(),
                counters: Arc::clone(&counters),
                stop: stop.clone(),
            });
            listening.push(started.await?);
            listeners.push((subject, counters));
        }
        let mut discovery = Vec::new();
        for subject in discovery::subjects(&identity.name, &identity.id) {
            discovery.push(client.subscribe(subject).await.map_err(RpcError::transport)?);
        }
        // The subscriptions exist on the server once it has answered a round trip.
        client.flush().await.map_err(RpcError::transport)?;

        let listeners: Listeners = Arc::new(listeners);
        let discovering = tokio::spawn(answer_discovery(
            futures::stream::select_all(discovery),
            Arc::clone(&router),
            Arc::clone(&listeners),
            client.clone(),
            stop.clone(),
        ));
        tracing::info!(service = %router.service.name, id = %router.service.id, version = %router.service.version,
            endpoints = router.endpoints().count(), "service started");
        Ok(Service {
            router,
            client: client.clone(),
            stop,
            tracker,
            serving,
            discovering,
            listeners,
            listening,
        })
    }
}

/// Services are built with [`Service::builder`].
pub struct Service {
    router: Arc<Router>,
    client: Client,
    stop: CancellationToken,
    tracker: TaskTracker,
    serving: Vec<JoinHandle<()>>,
    discovering: JoinHandle<()>,
    listeners: Listeners,
    listening: Vec<JoinHandle<()>>,
}

/// Each listener's subject and counters.
type Listeners = Arc<Vec<(&'static str, Arc<crate::events::Counters>)>>;

/// How a graceful stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// Requests still running when the grace period ran out; their callers get no reply.
    pub abandoned: usize,
}

impl Service {
    /// Starts describing a service: `name` as the Services API lists it, `version` semantic.
    pub fn builder(name: &str, version: &str) -> ServiceBuilder<()> {
        ServiceBuilder::new(name, version)
    }

    /// This instance's id, unique per start.
    pub fn id(&self) -> &str {
        &self.router.service.id
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.router.service.name
    }

    /// What each listener has done so far.
    pub fn listener_stats(&self) -> Vec<crate::events::ListenerStats> {
        self.listeners.iter().map(|(subject, counters)| counters.snapshot(subject)).collect()
    }

    /// Serves until `signal` resolves (see [`shutdown_signal`]), then stops gracefully.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()>,
        grace: Duration,
    ) -> Result<StopReport, RpcError> {
        signal.await;
        self.stop(grace).await
    }

    /// Stops taking requests, lets those already received finish within `grace`, and flushes their
    /// replies. Other instances in the queue group take the new requests meanwhile.
    pub async fn stop(self, grace: Duration) -> Result<StopReport, RpcError> {
        let deadline = Instant::now() + grace;
        tracing::info!(service = %self.router.service.name, ?grace, "draining");
        self.stop.cancel();
        let _ = tokio::time::timeout_at(deadline.into(), futures::future::join_all(self.serving)).await;
        let _ = self.discovering.await;
        let _ = tokio::time::timeout_at(deadline.into(), futures::future::join_all(self.listening)).await;
        self.tracker.close();
        let _ = tokio::time::timeout_at(deadline.into(), self.tracker.wait()).await;
        let abandoned = self.tracker.len();
        self.client.flush().await.map_err(RpcError::transport)?;
        tracing::info!(service = %self.router.service.name, abandoned, "stopped");
        Ok(StopReport { abandoned })
    }
}

/// Request bodies larger than this go straight to a task of their own: decoding and validating
/// them is work worth running on another core, in parallel with the next requests.
const INLINE_MAX_PAYLOAD: usize = 16 * 1024;

/// The request loop: route, admit, run the pipeline, publish the reply.
///
/// Each request's pipeline is first polled right here. Most finish in that one poll (fast handlers,
/// and every request refused by decoding or validation), and their replies are published from this
/// loop one after another, which lets the NATS connection write them out together. Only a handler
/// that really waits (I/O, timers), or a large request, is moved to a task of its own. Spawning
/// every request instead made each reply a write of its own and halved throughput (measured with
/// `benchmarks/src/bin/echo-vs-raw.rs`). A handler that computes for long on a small request
/// should do so in `tokio::task::spawn_blocking`, as in any tokio program.
async fn serve(
    mut requests: async_nats::Subscriber,
    router: Arc<Router>,
    client: Client,
    tracker: TaskTracker,
    stop: CancellationToken,
    max_reply: usize,
) {
    let cancelled = stop.cancelled();
    tokio::pin!(cancelled);
    let mut draining = false;
    loop {
        let message = if draining {
            requests.next().await
        } else {
            tokio::select! {
                biased;
                () = &mut cancelled => {
                    // Unsubscribe on the server but keep what is already buffered: those callers
                    // are waiting and will be answered.
                    if let Err(error) = requests.drain().await {
                        tracing::warn!(%error, "could not drain the request subscription");
                        return;
                    }
                    draining = true;
                    continue;
                }
                message = requests.next() => message,
            }
        };
        let Some(message) = message else { return };
        let Message { subject, reply: Some(reply), headers, payload, .. } = message else {
            continue; // a publish without a reply subject: nobody to answer
        };
        let large = payload.len() > INLINE_MAX_PAYLOAD;
        let incoming = Incoming { subject, headers, payload };
        let mut pipeline = match router.begin(incoming) {
            Begun::Running(pipeline) => pipeline,
            Begun::Refused(refused) => {
                publish(&client, reply, refused, max_reply).await;
                continue;
            }
        };
        let polled = if large { Poll::Pending } else { futures::poll!(pipeline.as_mut()) };
        match polled {
            Poll::Ready(outgoing) => publish(&client, reply, outgoing, max_reply).await,
            Poll::Pending => {
                let client = client.clone();
                tracker.spawn(async move {
                    let outgoing = pipeline.await;
                    publish(&client, reply, outgoing, max_reply).await;
                });
            }
        }
    }
}

async fn publish(client: &Client, reply: Subject, outgoing: Outgoing, max_reply: usize) {
    let outgoing = if outgoing.payload.len() > max_reply {
        // Never truncate: tell the caller what happened instead, with an id that finds this log line.
        let correlation_id = outgoing
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::CORRELATION_ID))
            .map_or_else(|| nuid::next().to_string(), |v| v.as_str().to_string());
        let size = outgoing.payload.len();
        tracing::error!(%correlation_id, size, max_reply, "reply too large for the NATS server");
        let error = ServiceError::internal(format!(
            "reply of {size} bytes exceeds the NATS server's max_payload of {max_reply} bytes"
        ));
        Outgoing::failure(outgoing.codec, &correlation_id, error)
    } else {
        outgoing
    };
    let published = match outgoing.headers {
        Some(headers) => client.publish_with_headers(reply, headers, outgoing.payload).await,
        None => client.publish(reply, outgoing.payload).await,
    };
    if let Err(error) = published {
        tracing::warn!(%error, "could not publish a reply");
    }
}

async fn answer_discovery(
    mut requests: futures::stream::SelectAll<async_nats::Subscriber>,
    router: Arc<Router>,
    listeners: Listeners,
    client: Client,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = requests.next() => message,
        };
        let Some(message) = message else { break };
        let stats = || listeners.iter().map(|(subject, counters)| counters.snapshot(subject)).collect();
        let answer = discovery::answer(&router, &message.subject, stats);
        let (Some(reply), Some(body)) = (message.reply, answer) else {
            continue;
        };
        if let Err(error) = client.publish(reply, body.into()).await {
            tracing::warn!(%error, "could not answer a Services API request");
        }
    }
    for mut subscriber in requests.into_iter() {
        let _ = subscriber.unsubscribe().await;
    }
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}
