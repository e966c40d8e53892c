//! Serving: a [`ServiceBuilder`] collects endpoints and limits, [`ServiceBuilder::start`] subscribes
//! them on NATS, and the returned [`Service`] stops gracefully.
//!
//! One request, from the wire and back:
//! 1. `serve` receives it on the service's queue subscription `{name}.>`;
//! 2. the `Router` finds the endpoint by subject (or answers 404);
//! 3. the endpoint's pipeline (`endpoint.rs`) takes it through the endpoint's [`layers`] (panic
//!    isolation, the deadline, yours, the in-flight bound) to the innermost service, which decodes,
//!    validates, runs the handler and encodes: in place when it can finish at once, on a task of
//!    its own when the handler waits;
//! 4. the reply is published to the request's reply subject.
//!
//! Every transport reads a request's [`RequestHead`] (subject, codec, correlation id, deadline)
//! from its own framing once, at its edge, and frames the [`Dispatched`] reply its own way; the
//! steps between know no transport.
//!
//! Layout: `head` (what a request says besides its body), `context` (handler arguments), `handler`
//! (the `async fn` shapes), `endpoint` (the pipeline), `layers` (what is done around each request),
//! `reply`, `router`, `stats`, `discovery`
//! (`$SRV.*`), `shutdown` (signals), `dispatcher` (the pipeline without NATS, for other transports
//! and tests).

mod context;
mod discovery;
mod dispatcher;
mod endpoint;
mod handler;
mod head;
mod idempotency;
pub mod layers;
mod reply;
mod router;
mod shutdown;
pub(crate) mod stats;
mod timer;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_nats::{Client, Message, Subject};
use futures::{FutureExt, StreamExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use context::{FromContext, RequestContext, State};
pub use discovery::{EndpointData, EndpointStats, Latency, ServiceStats};
pub use dispatcher::{Dispatcher, Finishing};
pub use endpoint::EndpointOptions;
pub use handler::Handler;
pub use head::RequestHead;
pub use reply::Dispatched;
pub use shutdown::shutdown_signal;
pub use timer::{MIN_PERIOD, Runs, Tick, TimerStats, TimerTask};

pub(crate) use endpoint::{Endpoint, decode_valid};
pub(crate) use idempotency::key_problem;
pub(crate) use layers::panic_text;
pub(crate) use router::{Begun, Router, ServiceIdentity};
use stats::EndpointCounters;

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

/// An endpoint to be made, and the queue group it asked for.
struct Registered {
    /// `{service of its request type}.{endpoint}`: checked against the service's name.
    key: String,
    queue_group: endpoint::QueueGroup,
    make: MakeEndpoint,
}

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
    finishing: TaskTracker,
    /// The service's layers, the first innermost.
    layers: Vec<layers::Wrap>,
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
/// let stop = natsrpc::shutdown_signal(); // first: SIGTERM drains from here on
/// let nats = natsrpc::connect("nats://127.0.0.1:4222").await?;
/// let service = natsrpc::Service::builder("pinger", "1.0.0")
///     .description("Answers pings")
///     .max_in_flight(256)
///     .endpoint(ping)
///     .start(&nats)
///     .await?;
/// service.run_until(stop, std::time::Duration::from_secs(10)).await?;
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
    endpoints: Vec<Registered>,
    listeners: Vec<(&'static str, StartListener)>,
    timers: Vec<timer::Timer>,
    layers: Vec<layers::Wrap>,
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
            timers: Vec::new(),
            layers: Vec::new(),
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

    /// Wraps every endpoint's requests in `layer` (a tower layer: see [`layers`] for the stack
    /// and the layers natsrpc has), outside each endpoint's own layers; layers added later go
    /// outside those added before. Endpoints added before or after alike get it.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<layers::BoxEndpointService> + Send + Sync + 'static,
        L::Service: tower::Service<layers::Call, Response = bytes::Bytes, Error = ServiceError>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<layers::Call>>::Future: Send + 'static,
    {
        self.layers.push(layers::Wrap::new(layer));
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
            timers: self.timers,
            layers: self.layers,
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
        let queue_group = options.queue_group.clone();
        let idempotent_replies = options.idempotent_replies;
        let make: MakeEndpoint = Box::new(move |defaults: &Defaults| {
            let limits = endpoint::Limits {
                service: defaults.service.clone(),
                name: <H::Request as Request>::ENDPOINT.to_string(),
                timeout: options.timeout.unwrap_or(defaults.timeout),
                max_payload: defaults.max_payload,
                bound: layers::InFlightLimitLayer::new(
                    options.max_in_flight.unwrap_or(defaults.max_in_flight),
                ),
                stats: EndpointCounters::new(),
                cancel_at_deadline: options.cancel_at_deadline,
                finishing: defaults.finishing.clone(),
            };
            let mut metadata = <H::Request as Request>::endpoint_metadata();
            metadata.extend(options.metadata);
            // The endpoint's layers inside the service's; inside them, where keyed requests claim
            // their keys.
            let mut stack: Vec<layers::Wrap> =
                idempotent_replies.map(|_| layers::Wrap::new(layers::GateLayer)).into_iter().collect();
            stack.extend(options.layers);
            stack.extend(defaults.layers.iter().cloned());
            let mut endpoint = Endpoint::new(handler, state, limits, metadata, &stack);
            endpoint.idempotent_replies = idempotent_replies;
            endpoint
        });
        // The request type's service name must be this service's: checked in `router()`.
        let service_of_type = <H::Request as Request>::SERVICE.to_string();
        self.endpoints.push(Registered { key: format!("{service_of_type}.{name}"), queue_group, make });
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

    /// Adds a timer: `task` (an `async fn(State<S>, Tick) -> Result<(), E>`) runs every
    /// `period`, at the wall clock's multiples of it, on every instance or on one instance of the
    /// queue group ([`Runs`]; see the `timer` module's page for how instances agree, through a
    /// JetStream stream). A run still going when the next period starts makes that period
    /// skipped on its instance (another instance may take a period of a timer of the queue group
    /// meanwhile: a task that must never overlap itself should take less than its period); a failure or panic is logged and counted (`$SRV.STATS`'s `timers`, the
    /// `natsrpc_timer_runs_total` metric), and the timer goes on. Timers run when the service is
    /// started on NATS, not in a [`Dispatcher`].
    ///
    /// ```no_run
    /// # async fn run(nats: natsrpc::async_nats::Client) -> Result<(), natsrpc::RpcError> {
    /// use std::time::Duration;
    /// use natsrpc::{Runs, ServiceError, State, Tick};
    ///
    /// async fn expire_carts(State(ttl): State<Duration>, tick: Tick) -> Result<(), ServiceError> {
    ///     println!("period {}: expiring carts older than {ttl:?}", tick.slot);
    ///     Ok(())
    /// }
    /// let service = natsrpc::Service::builder("carts", "1.0.0")
    ///     .state(Duration::from_secs(3600))
    ///     .timer("expire_carts", Duration::from_secs(60), Runs::OnOneInstance, expire_carts)
    ///     .start(&nats)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn timer<T>(mut self, name: &str, period: Duration, runs: Runs, task: T) -> Self
    where
        S: Clone,
        T: TimerTask<S>,
    {
        self.timers.push(timer::Timer::new(name, period, runs, Arc::clone(&self.state), task));
        self
    }

    /// Checks the configuration and builds the routing table (no NATS involved).
    pub(crate) fn router(self) -> Result<Router, RpcError> {
        if !is_valid_name(&self.name) {
            return Err(RpcError::config(format!(
                "service name {:?} must be non-empty and use only A-Z, a-z, 0-9, _ and -",
                self.name
            )));
        }
        if !is_semver(&self.version) {
            return Err(RpcError::config(format!(
                "service version {:?} is not semantic (1.2.3)",
                self.version
            )));
        }
        timer::check(&self.timers)?;
        let finishing = TaskTracker::new();
        let defaults = Defaults {
            service: self.name.clone(),
            max_in_flight: self.max_in_flight,
            timeout: self.timeout,
            max_payload: self.max_payload,
            finishing: finishing.clone(),
            layers: self.layers,
        };
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(self.endpoints.len());
        for Registered { key, queue_group, make } in self.endpoints {
            let (service, name) = key.split_once('.').unwrap_or_default();
            if service != self.name {
                return Err(RpcError::config(format!(
                    "endpoint `{name}` belongs to service `{service}`, not `{}`",
                    self.name
                )));
            }
            if !is_valid_name(name) {
                return Err(RpcError::config(format!(
                    "endpoint name {name:?} must use only A-Z, a-z, 0-9, _ and -"
                )));
            }
            if endpoints.iter().any(|e| e.name == name) {
                return Err(RpcError::config(format!("endpoint `{name}` is registered twice")));
            }
            let mut endpoint = make(&defaults);
            if let Some(problem) = crate::contract::subject_problem(&endpoint.subject) {
                return Err(RpcError::config(format!(
                    "endpoint `{name}`'s subject {:?} {problem}",
                    crate::escape::escape(&endpoint.subject, 64)
                )));
            }
            if let Some(other) = endpoints.iter().find(|e| e.subject == endpoint.subject) {
                return Err(RpcError::config(format!(
                    "endpoints `{}` and `{name}` share the subject {}",
                    other.name, endpoint.subject
                )));
            }
            endpoint.queue_group = match queue_group {
                endpoint::QueueGroup::Service => Some(self.queue_group.clone()),
                endpoint::QueueGroup::Own(group) => Some(group),
                endpoint::QueueGroup::None => None,
            };
            if let Some(group) =
                endpoint.queue_group.as_deref().filter(|g| crate::contract::subject_problem(g).is_some())
            {
                return Err(RpcError::config(format!(
                    "endpoint `{name}`'s queue group {:?} is not a NATS token",
                    crate::escape::escape(group, 64)
                )));
            }
            if endpoint.queue_group.is_none() && endpoint.idempotent_replies.is_some() {
                // Every instance would claim each key, and all but one answer "in progress".
                return Err(RpcError::config(format!(
                    "endpoint `{name}` keeps idempotent replies in no queue group: every instance would take each request"
                )));
            }
            // The service's `{name}.>`, in its queue group, takes the rest.
            let under_service =
                endpoint.subject.strip_prefix(self.name.as_str()).is_some_and(|r| r.starts_with('.'));
            endpoint.own_subscription =
                !under_service || endpoint.queue_group.as_deref() != Some(self.queue_group.as_str());
            endpoints.push(endpoint);
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
        Ok(Router::new(identity, endpoints, finishing))
    }

    /// What a service binary's `main` does: connects as the environment says
    /// ([`crate::NatsConfig::from_env`]: `NATS_URL`, default `nats://127.0.0.1:4222`, credentials and
    /// TLS), the connection named after the service, starts the service (and its metrics at
    /// `METRICS_ADDR` when set, see [`crate::metrics`]; its spans go to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` when set, see [`crate::trace`]), serves until SIGINT or SIGTERM, then
    /// drains, giving requests in flight up to 10 seconds.
    pub async fn run(self) -> Result<StopReport, RpcError> {
        let stop = shutdown_signal();
        let _metrics = crate::metrics::serve_from_env().await?;
        crate::trace::export_from_env()?;
        let nats = crate::NatsConfig::from_env()?.with_name(self.name.clone()).connect().await?;
        let service = self.start(&nats).await?;
        service.run_until(stop, Duration::from_secs(10)).await
    }

    /// Subscribes the endpoints and the Services API subjects, and starts serving.
    ///
    /// A server that refuses the service's connection any of its subjects (its user's
    /// `permissions`) fails the start with [`RpcError::PermissionDenied`] naming each one, instead
    /// of a service that runs and never hears a request. The refusals are seen on connections made
    /// by natsrpc ([`crate::connect`], [`crate::NatsConfig::connect`]).
    pub async fn start(self, client: &Client) -> Result<Service, RpcError> {
        let denials = crate::connection::denials::of(client);
        let before = denials.as_ref().map_or(0, |d| d.count());
        let name = self.name.clone();
        let mut listened: Vec<String> =
            self.listeners.iter().map(|(subject, _)| subject.to_string()).collect();
        let started = self.start_unchecked(client).await;
        if let Ok(service) = &started {
            // Endpoints' own subscriptions are the start's too.
            let own = service.router.endpoints().filter(|e| e.own_subscription).map(|e| e.subject.clone());
            listened.extend(own);
        }
        let refused = match &denials {
            Some(denials) => refused_at_start(client, denials, before, &name, &listened).await,
            None => Vec::new(),
        };
        if refused.is_empty() {
            if let Ok(service) = &started {
                let identity = &service.router.service;
                tracing::info!(service = %identity.name, id = %identity.id, version = %identity.version,
                    endpoints = service.router.endpoints().count(), "service started");
            }
            return started;
        }
        if let Ok(service) = started {
            // Nothing was served: the subscriptions the server did grant are dropped at once.
            let _ = service.stop(Duration::ZERO).await;
        }
        Err(RpcError::PermissionDenied(refused))
    }

    async fn start_unchecked(mut self, client: &Client) -> Result<Service, RpcError> {
        let receivers = self.receivers;
        let starting = std::mem::take(&mut self.listeners);
        timer::check(&self.timers)?;
        let timers = std::mem::take(&mut self.timers);
        let router = Arc::new(self.router()?);
        let identity = &router.service;
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let receiving = Arc::new(Receiving::default());
        let loop_of = |index| ReceiveLoop {
            index,
            router: Arc::clone(&router),
            client: client.clone(),
            tracker: tracker.clone(),
            stop: stop.clone(),
            receiving: Arc::clone(&receiving),
        };
        // Should starting fail half-way, the loops already serving stop with it.
        let stop_on_failure = stop.clone().drop_guard();
        let mut serving = Vec::with_capacity(receivers);
        for index in 0..receivers {
            let receive = loop_of(index);
            let requests = receive.subscribe().await?;
            serving.push(tokio::spawn(receive.supervise(requests)));
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
        // Sent; whether the server took them is for `refused_at_start` to find out.
        client.flush().await.map_err(RpcError::transport)?;

        let (timers, timing) = timer::start(timers, client, &identity.name, stop.clone()).await?;
        listening.extend(timing);
        let listeners: Listeners = Arc::new(Background { listeners, timers });
        crate::metrics::register(&router, Some(&listeners));
        let discovering = tokio::spawn(answer_discovery(
            futures::stream::select_all(discovery),
            Arc::clone(&router),
            Arc::clone(&listeners),
            Arc::clone(&receiving),
            client.clone(),
            stop.clone(),
        ));
        stop_on_failure.disarm();
        Ok(Service {
            router,
            client: client.clone(),
            stop,
            tracker,
            serving,
            receiving,
            discovering,
            listeners,
            listening,
        })
    }
}

/// The refusals a start met: its subscriptions (`{name}.>`, the Services API's `$SRV` subjects, its
/// listeners' subjects) and the JetStream API its listeners use.
///
/// A server reads a connection's operations in order and answers a refused one at once, so a probe
/// sent after the start's subscriptions is answered after their refusals. The probe subscribes to
/// a subject of the connection's own inbox and publishes to it: the server either echoes the
/// message (nothing it refused stands in the way) or refuses the subscription or the publish
/// (least-privilege users may not publish to their own inbox), and either way every refusal of the
/// start has then come. (async-nats's `flush` only writes; it asks the server nothing.)
async fn refused_at_start(
    client: &Client,
    denials: &crate::connection::denials::Denials,
    before: u64,
    name: &str,
    listened: &[String],
) -> Vec<crate::Denial> {
    use futures::StreamExt;
    let probe = format!("{}.{}", client.new_inbox(), crate::connection::denials::PROBE);
    let answered = async {
        let mut echo = client.subscribe(probe.clone()).await.ok()?;
        client.publish(probe.clone(), bytes::Bytes::new()).await.ok()?;
        client.flush().await.ok()?;
        let refused = async {
            while !denials.since(before).iter().any(|d| d.subject == probe) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        tokio::select! {
            // The refusals came before the echo, through the connection's event task: it gets a
            // moment to hand them over.
            _ = echo.next() => tokio::time::sleep(Duration::from_millis(20)).await,
            () = refused => {}
        }
        Some(())
    };
    if tokio::time::timeout(Duration::from_secs(5), answered).await.ok().flatten().is_none() {
        tracing::warn!(
            service = name,
            "could not check the server's permissions: no answer to a probe within 5 s"
        );
    }
    let ours = |d: &crate::Denial| match d.action {
        crate::DeniedAction::Subscribe => {
            d.subject == format!("{name}.>")
                || d.subject.starts_with("$SRV.")
                || listened.contains(&d.subject)
        }
        crate::DeniedAction::Publish => d.subject.starts_with("$JS."),
    };
    denials.since(before).into_iter().filter(ours).collect()
}

/// Services are built with [`Service::builder`].
pub struct Service {
    router: Arc<Router>,
    client: Client,
    stop: CancellationToken,
    tracker: TaskTracker,
    serving: Vec<JoinHandle<()>>,
    receiving: Arc<Receiving>,
    discovering: JoinHandle<()>,
    listeners: Listeners,
    listening: Vec<JoinHandle<()>>,
}

/// Each listener's subject and counters.
pub(crate) type Listeners = Arc<Background>;

/// What a service runs besides its endpoints, for its stats and metrics.
#[derive(Default)]
pub(crate) struct Background {
    pub(crate) listeners: ListenerList,
    pub(crate) timers: Vec<Arc<timer::Counters>>,
}
pub(crate) type ListenerList = Vec<(&'static str, Arc<crate::events::Counters>)>;

/// How a graceful stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// Requests still running when the grace period ran out, including handlers still running
    /// after their caller's deadline (callers still waiting get no reply), and listeners' events
    /// and timers' runs cut short.
    pub abandoned: usize,
}

/// `"on"`, or `"off"` in the benchmark suite's validation-off control build (the cargo feature
/// `unvalidated-control`, never enabled in a service): every endpoint's stats carry it as
/// `data.validation`, so a benchmark can prove which build it measured.
pub const VALIDATION: &str = if cfg!(feature = "unvalidated-control") { "off" } else { "on" };

/// A receive loop or listener that ran this long was healthy: starting it again begins from the
/// shortest pause.
pub(crate) const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// How long a stop waits, after the grace period, for the last replies to reach the server.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

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
        self.listeners.listeners.iter().map(|(subject, counters)| counters.snapshot(subject)).collect()
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
    ///
    /// It returns within `grace` plus two seconds whatever the state of the connection: with the
    /// NATS server gone, the replies that could not be flushed are lost and the error says so.
    pub async fn stop(self, grace: Duration) -> Result<StopReport, RpcError> {
        let deadline = tokio::time::Instant::now() + grace;
        tracing::info!(service = %self.router.service.name, ?grace, "draining");
        self.stop.cancel();
        let _ = tokio::time::timeout_at(deadline, futures::future::join_all(self.serving)).await;
        let _ = tokio::time::timeout_at(deadline, self.discovering).await;
        // Listeners and timers end at the stop, once what they are doing is done; those still at
        // it when the grace period is over are cut short, and counted as abandoned.
        let background: Vec<tokio::task::AbortHandle> =
            self.listening.iter().map(JoinHandle::abort_handle).collect();
        let _ = tokio::time::timeout_at(deadline, futures::future::join_all(self.listening)).await;
        let cut_short = background.iter().filter(|task| !task.is_finished()).count();
        background.iter().for_each(tokio::task::AbortHandle::abort);
        self.tracker.close();
        self.router.finishing.close();
        let _ = tokio::time::timeout_at(deadline, self.tracker.wait()).await;
        let _ = tokio::time::timeout_at(deadline, self.router.finishing.wait()).await;
        // Every request still running holds one in-flight place, wherever its handler runs.
        let abandoned = cut_short + self.router.endpoints().map(Endpoint::in_flight).sum::<usize>();
        let flushed = tokio::time::timeout(FLUSH_TIMEOUT, self.client.flush()).await;
        drop(self.receiving);
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(RpcError::transport(error)),
            Err(_) => {
                return Err(RpcError::transport(format!(
                    "the last replies were not flushed within {FLUSH_TIMEOUT:?}: is the NATS server reachable?"
                )));
            }
        }
        tracing::info!(service = %self.router.service.name, abandoned, "stopped");
        Ok(StopReport { abandoned })
    }
}

/// A subscription a receive loop takes requests from: the service's `{name}.>`, or one of an
/// endpoint's own.
struct Tagged {
    subscriber: async_nats::Subscriber,
    service_wide: bool,
}

impl futures::Stream for Tagged {
    type Item = (bool, Message);

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        let service_wide = self.service_wide;
        self.subscriber.poll_next_unpin(cx).map(|message| message.map(|m| (service_wide, m)))
    }
}

/// A receive loop's subscriptions as one stream; most services have the one, read directly.
enum Inbound {
    One(Tagged),
    Many(futures::stream::SelectAll<Tagged>),
}

impl Inbound {
    fn of(mut subscriptions: Vec<Tagged>) -> Self {
        match (subscriptions.len(), subscriptions.pop()) {
            (1, Some(one)) => Inbound::One(one),
            (_, last) => Inbound::Many(futures::stream::select_all(subscriptions.into_iter().chain(last))),
        }
    }

    /// Unsubscribes on the server, keeping what is buffered.
    async fn drain(&mut self) -> Result<(), async_nats::UnsubscribeError> {
        match self {
            Inbound::One(one) => one.subscriber.drain().await,
            Inbound::Many(many) => {
                for tagged in many.iter_mut() {
                    tagged.subscriber.drain().await?;
                }
                Ok(())
            }
        }
    }
}

impl futures::Stream for Inbound {
    type Item = (bool, Message);

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Inbound::One(one) => one.poll_next_unpin(cx),
            Inbound::Many(many) => many.poll_next_unpin(cx),
        }
    }
}

/// Request bodies larger than this go straight to a task of their own: decoding and validating
/// them is work worth running on another core, in parallel with the next requests.
const INLINE_MAX_PAYLOAD: usize = 16 * 1024;

/// Which receive loops are taking requests now. The Services API answers only while one is, so a
/// service that cannot take requests never looks healthy to `nats micro ping`.
#[derive(Default)]
struct Receiving {
    /// Per loop, the task serving its subscription, while there is one.
    loops: std::sync::Mutex<BTreeMap<usize, tokio::task::AbortHandle>>,
}

impl Receiving {
    fn set(&self, index: usize, serving: Option<tokio::task::AbortHandle>) {
        let mut loops = self.loops.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match serving {
            Some(handle) => loops.insert(index, handle),
            None => loops.remove(&index),
        };
    }

    fn any(&self) -> bool {
        !self.loops.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }
}

/// How a receive loop's `serve` ended.
enum Ended {
    /// The service is stopping and every buffered request has been answered.
    Stopped,
    /// The subscription ended on its own: the connection closed for good.
    Closed,
}

/// One of the service's receive loops and what it needs to start again.
struct ReceiveLoop {
    index: usize,
    router: Arc<Router>,
    client: Client,
    tracker: TaskTracker,
    stop: CancellationToken,
    receiving: Arc<Receiving>,
}

impl ReceiveLoop {
    /// The service's `{name}.>` in its queue group, and the endpoints' own subscriptions: one in
    /// a queue group in every loop (the group gives each request to one of them), one in none in
    /// the first loop only (each instance answers once).
    async fn subscribe(&self) -> Result<Inbound, RpcError> {
        let identity = &self.router.service;
        let service = self
            .client
            .queue_subscribe(format!("{}.>", identity.name), identity.queue_group.clone())
            .await
            .map_err(RpcError::transport)?;
        let mut inbound = vec![Tagged { subscriber: service, service_wide: true }];
        for endpoint in self.router.endpoints().filter(|e| e.own_subscription) {
            let subject = endpoint.subject.clone();
            let subscribed = match &endpoint.queue_group {
                Some(group) => self.client.queue_subscribe(subject, group.clone()).await,
                None if self.index == 0 => self.client.subscribe(subject).await,
                None => continue,
            };
            inbound
                .push(Tagged { subscriber: subscribed.map_err(RpcError::transport)?, service_wide: false });
        }
        Ok(Inbound::of(inbound))
    }

    /// Serves `requests`, and serves again on a new subscription whenever serving ends for any
    /// reason but the service's stop (a panic that escaped, a subscription that ended). Between
    /// the two, the loop counts as down in [`Receiving`].
    async fn supervise(self, requests: Inbound) {
        let mut requests = Some(requests);
        let mut backoff = Duration::from_millis(50);
        loop {
            let subscribed = match requests.take() {
                Some(requests) => Ok(requests),
                None => self.subscribe().await,
            };
            let ended = match subscribed {
                Ok(requests) => {
                    let serving = tokio::spawn(serve(
                        requests,
                        Arc::clone(&self.router),
                        self.client.clone(),
                        self.tracker.clone(),
                        self.stop.clone(),
                    ));
                    self.receiving.set(self.index, Some(serving.abort_handle()));
                    let serving_since = tokio::time::Instant::now();
                    let ended = serving.await;
                    self.receiving.set(self.index, None);
                    if serving_since.elapsed() > HEALTHY_RUN {
                        backoff = Duration::from_millis(50); // it had been healthy
                    }
                    match ended {
                        Ok(Ended::Stopped) => return,
                        Ok(Ended::Closed) => "its subscription ended".to_string(),
                        Err(error) if error.is_panic() => "it panicked".to_string(),
                        Err(_) => "it was cancelled".to_string(),
                    }
                }
                Err(error) => format!("it could not subscribe: {error}"),
            };
            if self.stop.is_cancelled() {
                return;
            }
            tracing::error!(service = %self.router.service.name, receiver = self.index, why = %ended,
                ?backoff, "a receive loop ended; starting it again");
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// The request loop: route, run the pipeline, publish the reply.
///
/// Each request's pipeline is first polled right here. Most finish in that one poll (fast handlers,
/// and every request refused by decoding or validation), and their replies are published from this
/// loop one after another, which lets the NATS connection write them out together. Only a handler
/// that really waits (I/O, timers), or a large request, is moved to a task of its own. Spawning
/// every request instead made each reply a write of its own and halved throughput (measured with
/// `benchmarks/runner/src/bin/echo-vs-raw.rs`). A handler that computes for long on a small request
/// should do so in `tokio::task::spawn_blocking`, as in any tokio program.
async fn serve(
    mut requests: Inbound,
    router: Arc<Router>,
    client: Client,
    tracker: TaskTracker,
    stop: CancellationToken,
) -> Ended {
    let max_reply = client.server_info().max_payload;
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
                        return Ended::Stopped;
                    }
                    draining = true;
                    continue;
                }
                message = requests.next() => message,
            }
        };
        let Some((service_wide, message)) = message else {
            return if draining { Ended::Stopped } else { Ended::Closed };
        };
        let Message { subject, reply: Some(reply), headers, payload, .. } = message else {
            continue; // a publish without a reply subject: nobody to answer
        };
        let head = RequestHead::from_nats(subject, headers);
        let answer =
            answer(&router, &client, &tracker, reply.clone(), (head, service_wide), payload, max_reply);
        // The pipeline catches its own panics; this catches any elsewhere on the request's way
        // (routing, publishing), so that no request can end the loop.
        if AssertUnwindSafe(answer).catch_unwind().await.is_err() {
            publish_panicked(&client, reply).await;
        }
    }
}

/// Answers one request: in place when its pipeline finishes at once, else from a task of its own.
async fn answer(
    router: &Arc<Router>,
    client: &Client,
    tracker: &TaskTracker,
    reply: Subject,
    (head, service_wide): (RequestHead, bool),
    payload: bytes::Bytes,
    max_reply: usize,
) {
    if let Some(keyed) = Keyed::of(router, &head, service_wide) {
        return keyed.answer(router, client, tracker, reply, head, payload, max_reply);
    }
    let large = payload.len() > INLINE_MAX_PAYLOAD;
    let mut pipeline = match router.begin(head, payload, service_wide) {
        Begun::Running(pipeline) => pipeline,
        Begun::Refused(refused) => return publish(client, reply, refused, max_reply).await,
        Begun::Elsewhere => return,
    };
    let polled = if large { Poll::Pending } else { futures::poll!(pipeline.as_mut()) };
    match polled {
        Poll::Ready(dispatched) => publish(client, reply, dispatched, max_reply).await,
        Poll::Pending => {
            let client = client.clone();
            tracker.spawn(async move {
                let answered = async {
                    let dispatched = pipeline.await;
                    publish(&client, reply.clone(), dispatched, max_reply).await;
                };
                if AssertUnwindSafe(answered).catch_unwind().await.is_err() {
                    publish_panicked(&client, reply).await;
                }
            });
        }
    }
}

/// A request with an `Idempotency-Key`, to an endpoint that keeps replies.
struct Keyed {
    key: String,
    endpoint: String,
    /// A claim older than this is a dead instance's: twice the endpoint's deadline, and a margin
    /// (a handler runs on past its deadline; one running this long has most likely died).
    stale_after: Duration,
}

impl Keyed {
    fn of(router: &Router, head: &RequestHead, service_wide: bool) -> Option<Self> {
        // Most services keep no replies: their requests' headers are not looked at.
        router.replies_ttl?;
        let key = head.headers()?.get(headers::names::IDEMPOTENCY_KEY)?.as_str();
        let endpoint = router.route(head.subject()).ok()?;
        endpoint.idempotent_replies?;
        if service_wide && endpoint.own_subscription {
            return None; // its own subscription answers it
        }
        Some(Self {
            key: key.to_string(),
            endpoint: endpoint.name.clone(),
            stale_after: endpoint.limits.timeout * 2 + Duration::from_secs(30),
        })
    }

    /// Runs the request to the gate inside the user's layers (a request they refuse claims
    /// nothing), claims the key there, then lets it on to its handler, sends the first reply
    /// again, or refuses; always from a task of its own (the claim waits on JetStream).
    #[allow(clippy::too_many_arguments)] // the request's parts, as `answer` has them
    fn answer(
        self,
        router: &Arc<Router>,
        client: &Client,
        tracker: &TaskTracker,
        reply: Subject,
        head: RequestHead,
        payload: bytes::Bytes,
        max_reply: usize,
    ) {
        let checked_head = head.clone();
        let run = match router.begin_keyed(head, payload.clone()) {
            Ok(run) => run,
            Err(refused) => {
                let client = client.clone();
                tracker.spawn(async move { publish(&client, reply, *refused, max_reply).await });
                return;
            }
        };
        let (client, router, tasks) = (client.clone(), Arc::clone(router), tracker.clone());
        tracker.spawn(async move {
            let answered = async {
                let router::KeyedRun { pipeline, finished, at_gate, verdict } = run;
                let mut running = tasks.spawn(pipeline);
                // Refused by the user's layers, or answered at the deadline before the gate: the
                // pipeline's reply, and nothing claimed (a request still in the layers then finds
                // the gate closed, and never runs).
                let ended = tokio::select! {
                    passed = at_gate => passed.err().map(|_refused| None),
                    ended = &mut running => Some(Some(ended)),
                };
                match ended {
                    None => {} // at the gate
                    Some(None) => {
                        return publish_ended(&client, reply.clone(), running.await, max_reply).await;
                    }
                    Some(Some(ended)) => {
                        return publish_ended(&client, reply.clone(), ended, max_reply).await;
                    }
                }
                // Off the receive loop: reading a large body again is this request's cost only.
                let codec = checked_head.codec(&payload).unwrap_or_default();
                let fingerprint = idempotency::fingerprint(codec, &payload);
                let claimed = self.claim(&router, &client, (&checked_head, &payload), fingerprint).await;
                let replies = router.replies.get();
                match claimed {
                    idempotency::Claimed::Mine(sequence) => {
                        let _ = verdict.send(layers::Verdict::Proceed);
                        let Ok(dispatched) = running.await else {
                            return publish_panicked(&client, reply.clone()).await;
                        };
                        let Some(replies) = replies else { return };
                        if dispatched.status != 504 {
                            replies.keep(&self.endpoint, &self.key, sequence, fingerprint, &dispatched).await;
                            return publish(&client, reply.clone(), dispatched, max_reply).await;
                        }
                        // The caller is answered at its deadline; the handler may still be running
                        // (handlers run to their end), and what it ends with is what retries get.
                        // Until then they are told to retry later. A handler dropped at the
                        // deadline (`cancel_at_deadline`) sends nothing, and the 504 releases the key.
                        publish(&client, reply.clone(), dispatched.clone(), max_reply).await;
                        let ended = match tokio::time::timeout(self.stale_after, finished).await {
                            Ok(Ok(ended)) => ended,
                            _ => dispatched,
                        };
                        replies.keep(&self.endpoint, &self.key, sequence, fingerprint, &ended).await;
                    }
                    idempotency::Claimed::Replay(headers, body) => {
                        // The request ends at the gate without its handler (counted as answered).
                        let _ = verdict.send(layers::Verdict::Answer(Ok(bytes::Bytes::new())));
                        send(&client, reply.clone(), Some(headers), body).await;
                    }
                    idempotency::Claimed::Refused(error) => {
                        let _ = verdict.send(layers::Verdict::Answer(Err(error)));
                        publish_ended(&client, reply.clone(), running.await, max_reply).await;
                    }
                }
            };
            if AssertUnwindSafe(answered).catch_unwind().await.is_err() {
                publish_panicked(&client, reply).await;
            }
        });
    }

    /// Claims the key of a request that passed the user's layers, once it is known to be one
    /// that would be handled (a well-formed key, a body that decodes and validates, a place in
    /// flight): a request refused anyway claims nothing.
    async fn claim(
        &self,
        router: &Router,
        client: &Client,
        (head, payload): (&RequestHead, &[u8]),
        fingerprint: u64,
    ) -> idempotency::Claimed {
        let refused = |error| idempotency::Claimed::Refused(error);
        if let Some(problem) = idempotency::key_problem(&self.key) {
            return refused(problem);
        }
        let endpoint = match router.route(head.subject()) {
            Ok(endpoint) => endpoint,
            Err(error) => return refused(error),
        };
        if let Err(error) = endpoint.check(head, payload) {
            return refused(error);
        }
        if endpoint.is_full() {
            return refused(ServiceError::overloaded(endpoint.limits.bound.max()));
        }
        // The stream is opened by the first keyed request (and again by the next, should that
        // fail): a service that keeps no reply needs no JetStream.
        let ttl = router.replies_ttl.unwrap_or_default();
        let opened =
            router.replies.get_or_try_init(|| idempotency::Replies::open(client, &router.service.name, ttl));
        let claimed = match opened.await {
            Ok(replies) => replies.claim(&self.endpoint, &self.key, fingerprint, self.stale_after).await,
            Err(error) => Err(error),
        };
        // Without JetStream nothing can be promised: refused, to be retried.
        claimed.unwrap_or_else(|error| {
            tracing::warn!(%error, endpoint = %self.endpoint,
                "could not claim an idempotency key (idempotent replies need JetStream)");
            refused(ServiceError::unavailable("idempotent replies are unavailable; retry later"))
        })
    }
}

/// Publishes the reply of a pipeline that ran on a task of its own (or, when that task
/// panicked, says so).
async fn publish_ended(
    client: &Client,
    reply: Subject,
    ended: Result<Dispatched, tokio::task::JoinError>,
    max_reply: usize,
) {
    match ended {
        Ok(dispatched) => publish(client, reply, dispatched, max_reply).await,
        Err(_) => publish_panicked(client, reply).await,
    }
}

/// The answer to a request whose way panicked outside its pipeline, where neither its codec nor its
/// correlation id is at hand: a 500 in JSON with an id of its own, logged.
async fn publish_panicked(client: &Client, reply: Subject) {
    let correlation_id = nuid::next().to_string();
    tracing::error!(%correlation_id, "a request panicked outside its pipeline");
    let error = ServiceError::internal(format!("internal error (correlation id {correlation_id})"));
    let failed = Dispatched::failure(crate::codec::Codec::Json, &correlation_id, error);
    send(client, reply, failed.nats_headers(), failed.body).await;
}

/// Publishes a reply, framed as NATS frames it ([`Dispatched::nats_headers`]), and never truncated:
/// a reply the server would refuse becomes a 500 that says so, with an id that finds the log line.
async fn publish(client: &Client, reply: Subject, dispatched: Dispatched, max_reply: usize) {
    let headers = dispatched.nats_headers();
    let size = dispatched.body.len() + headers.as_ref().map_or(0, headers::wire_len);
    if size <= max_reply {
        return send(client, reply, headers, dispatched.body).await;
    }
    let correlation_id = dispatched.correlation_id.unwrap_or_else(|| nuid::next().to_string());
    tracing::error!(%correlation_id, size, max_reply, "reply too large for the NATS server");
    let error = ServiceError::internal(format!(
        "reply of {size} bytes exceeds the NATS server's max_payload of {max_reply} bytes"
    ));
    let failed = Dispatched::failure(dispatched.codec, &correlation_id, error);
    send(client, reply, failed.nats_headers(), failed.body).await;
}

async fn send(client: &Client, reply: Subject, headers: Option<async_nats::HeaderMap>, body: bytes::Bytes) {
    let published = match headers {
        Some(headers) => client.publish_with_headers(reply, headers, body).await,
        None => client.publish(reply, body).await,
    };
    if let Err(error) = published {
        tracing::warn!(%error, "could not publish a reply");
    }
}

async fn answer_discovery(
    mut requests: futures::stream::SelectAll<async_nats::Subscriber>,
    router: Arc<Router>,
    listeners: Listeners,
    receiving: Arc<Receiving>,
    client: Client,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = requests.next() => message,
        };
        let Some(message) = message else { break };
        if !receiving.any() {
            // No loop takes requests right now: saying otherwise would make a deaf service look
            // healthy. Silence is what a dead instance answers.
            continue;
        }
        let answer = discovery::answer(&router, &message.subject, Some(&listeners));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::testing::NatsServer;

    #[derive(serde::Serialize, serde::Deserialize, validator::Validate)]
    struct Ping {}
    crate::request!(Ping => u8, service = "loops", endpoint = "ping");

    async fn ping(_: Ping) -> Result<u8, ServiceError> {
        Ok(7)
    }

    async fn pings(nats: &Client) -> bool {
        let asked = nats.request("$SRV.PING.loops", "".into());
        matches!(tokio::time::timeout(Duration::from_millis(300), asked).await, Ok(Ok(_)))
    }

    #[tokio::test]
    async fn a_receive_loop_that_ends_is_started_again() {
        let server = NatsServer::start().unwrap();
        let nats = crate::connect(&server.url()).await.unwrap();
        let service = Service::builder("loops", "1.0.0").endpoint(ping).start(&nats).await.unwrap();
        let client = crate::Client::new(nats.clone());
        assert_eq!(client.call(&Ping {}).await.unwrap(), 7);

        // End the loop the way a bug would: its task goes away.
        let serving: Vec<_> = service.receiving.loops.lock().unwrap().values().cloned().collect();
        serving.iter().for_each(tokio::task::AbortHandle::abort);
        let mut answered = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if client
                .call_with(&Ping {}, crate::CallOptions::new().timeout(Duration::from_millis(200)))
                .await
                .is_ok()
            {
                answered = true;
                break;
            }
        }
        assert!(answered, "the loop took requests again");
        assert!(pings(&nats).await);
        service.stop(Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test]
    async fn the_services_api_is_silent_while_no_loop_takes_requests() {
        let server = NatsServer::start().unwrap();
        let nats = crate::connect(&server.url()).await.unwrap();
        let router = Arc::new(Service::builder("loops", "1.0.0").endpoint(ping).router().unwrap());
        let subscriber = nats.subscribe("$SRV.PING.loops").await.unwrap();
        nats.flush().await.unwrap();
        let receiving = Arc::new(Receiving::default());
        let stop = CancellationToken::new();
        let answering = tokio::spawn(answer_discovery(
            futures::stream::select_all([subscriber]),
            router,
            Arc::new(Background::default()),
            Arc::clone(&receiving),
            nats.clone(),
            stop.clone(),
        ));
        assert!(!pings(&nats).await, "no loop: no answer");
        let idle = tokio::spawn(std::future::pending::<()>());
        receiving.set(0, Some(idle.abort_handle()));
        assert!(pings(&nats).await, "a loop: an answer");
        receiving.set(0, None);
        assert!(!pings(&nats).await, "the loop gone: silence again");
        stop.cancel();
        idle.abort();
        answering.await.unwrap();
    }
}
