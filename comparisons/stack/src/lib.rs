//! # stack
//!
//! What every stack of the comparison hosts: the three services (ecommerce, analytics, fileproc)
//! with their shared contracts and domain, over one of two state stores:
//!
//! - [`StoreKind::Memory`]: each process keeps its own state, as the NATS services do by default;
//! - [`StoreKind::Redis`]: state in Redis ([`redis`] module), so that any number of stateless
//!   instances can serve: the HTTP+Redis architecture, and the control that runs the NATS
//!   services over the same store to tell transport cost from state-store cost.
//!
//! [`Hosting`] reads the choice and the services' settings from the environment and builds the
//! services either as [`natsrpc::Dispatcher`]s ([`Hosting::host`], for the HTTP API and the
//! RabbitMQ workers) or as NATS services ([`Hosting::start_on`]), joined by the stack's
//! [`Links`]: the client they call each other with and where the shop's events go. The
//! `nats-services` binary here is the NATS one.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let hosting = stack::Hosting { store: stack::StoreKind::Memory, ..stack::Hosting::default() };
//! let hosted = hosting.host(stack::Links::default()).await?;
//! let names: Vec<&str> = hosted.dispatchers.iter().map(|s| s.service()).collect();
//! assert_eq!(names, ["ecommerce", "analytics", "fileproc"]);
//! # Ok::<(), stack::StackError>(()) }).unwrap();
//! ```

pub mod links;
pub mod redis;
pub mod testing;

use std::str::FromStr;
use std::sync::Arc;

use analytics::domain::{Analytics, EventStore};
use ecommerce::domain::{Shop, ShopStore};
use faults::{FaultSettings, Faults};
use fileproc::domain::{FileLimits, FileProcessor, FileStore, Forwarding};
use natsrpc::settings::env_or;
use natsrpc::{Dispatcher, Service};

pub use crate::links::{Follower, Links};
use crate::redis::{RedisEventStore, RedisFileStore, RedisPool, RedisShopStore};

/// The services every stack hosts, by name.
pub const SERVICES: [&str; 3] =
    [ecommerce::contracts::SERVICE, analytics::contracts::SERVICE, fileproc::contracts::SERVICE];

/// What can go wrong while setting a stack up.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A setting has a value that cannot be used.
    #[error(transparent)]
    Settings(#[from] natsrpc::settings::SettingError),
    /// A file a setting names cannot be read.
    #[error("{name}: cannot read {path}: {source}")]
    Unreadable {
        /// The variable.
        name: &'static str,
        /// The file it names.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Redis could not be reached, refused a command, or answered what a script should not.
    #[error("redis: {0}")]
    Redis(#[source] natsrpc::error::BoxError),
    /// The fault settings are wrong.
    #[error(transparent)]
    Faults(#[from] faults::FaultError),
    /// A service could not be built or started.
    #[error(transparent)]
    Rpc(#[from] natsrpc::RpcError),
    /// The archive's database address cannot be used.
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
}

impl StackError {
    /// A Redis failure, `error` its source.
    pub fn redis(error: impl Into<natsrpc::error::BoxError>) -> Self {
        Self::Redis(error.into())
    }
}

/// Where the services keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process.
    Memory,
    /// In Redis, shared by every instance.
    Redis,
}

impl FromStr for StoreKind {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        match value {
            "memory" => Ok(Self::Memory),
            "redis" => Ok(Self::Redis),
            _ => Err(()),
        }
    }
}

/// The services' settings.
#[derive(Debug, Clone)]
pub struct Hosting {
    /// `STORE`: `memory` or `redis`.
    pub store: StoreKind,
    /// `REDIS_URL` (default `redis://127.0.0.1:6379`): `redis://user:password@host:port` for an
    /// ACL user, `rediss://` for TLS. Logged with its password hidden.
    pub redis_url: String,
    /// `REDIS_CA`: a PEM file of the CA that signed a `rediss://` server's certificate (default: the
    /// system's CAs).
    pub redis_ca: Option<std::path::PathBuf>,
    /// `REDIS_PREFIX`: the start of every key (default `natsrpc`); one per stack and run.
    pub redis_prefix: String,
    /// `REDIS_CONNECTIONS`: multiplexed connections per process (default 4).
    pub redis_connections: usize,
    /// `ECOMMERCE_SKUS`: catalog size (default 1000).
    pub skus: u32,
    /// `ECOMMERCE_STOCK`: units of each item at start (default 1,000,000).
    pub units: u64,
    /// `ANALYTICS_RETENTION_MINUTES` (default 60).
    pub retention_minutes: u64,
    /// `ANALYTICS_MAX_EVENTS`: events the in-memory analytics store holds at most (default
    /// 2,000,000); Redis keeps them for the retention, under its own `maxmemory`.
    pub max_events: usize,
    /// `RECEIVERS`: on NATS, the subscriptions taking each service's requests in (default 1).
    pub receivers: usize,
    /// `ORDER_EVENTS=on`: the shop publishes `order_placed` and `order_cancelled` and analytics
    /// counts them (JetStream on NATS, a Redis stream on HTTP+Redis, a durable queue on
    /// HTTP+RabbitMQ). Off by default: with it on, every order also costs an acknowledged,
    /// persisted publish and its consumption (0.58x the throughput of orders on the NATS stack).
    pub order_events: bool,
    /// `ARCHIVE_URL` (`postgres://user@host:port/database`): with `ORDER_EVENTS=on`, the
    /// processes that host analytics also archive the shop's orders there, from a consumer of the
    /// stack's event path of the archive's own ([`links::ARCHIVE`]). Unset, nothing is archived.
    pub archive_url: Option<String>,
    /// `SERVICES`: the services this process hosts, comma-separated (default all three); the
    /// others it reaches over the stack's transport.
    pub services: Vec<&'static str>,
    /// `INGEST_CHUNK`: events per `ingest_batch` when a job's records go on to analytics (default 100).
    pub ingest_chunk: usize,
    /// `INGEST_IN_FLIGHT`: chunks in flight at once per job (default 4).
    pub ingest_in_flight: usize,
    /// `FILE_*`: what the file service holds at most, and for how long (see
    /// [`fileproc::domain::FileLimits`]).
    pub files: FileLimits,
    /// `FAULTS_FILE` and `FAULT_*` (see the `faults` crate).
    pub faults: FaultSettings,
}

impl Default for Hosting {
    fn default() -> Self {
        Self {
            store: StoreKind::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_ca: None,
            redis_prefix: "natsrpc".into(),
            redis_connections: 4,
            skus: 1000,
            units: 1_000_000,
            retention_minutes: 60,
            max_events: analytics::domain::DEFAULT_MAX_EVENTS,
            receivers: 1,
            order_events: false,
            archive_url: None,
            services: SERVICES.to_vec(),
            ingest_chunk: 100,
            ingest_in_flight: 4,
            files: FileLimits::default(),
            faults: FaultSettings::default(),
        }
    }
}

/// The hosting's variables, as [`Hosting::from_env`] reads them, for a binary's `--help`.
pub const HOSTING_HELP: &str = "\
  STORE               memory or redis: where the services keep their state
  REDIS_URL           (default redis://127.0.0.1:6379; rediss:// for TLS), REDIS_CA, REDIS_PREFIX
                      (default natsrpc), REDIS_CONNECTIONS (default 4)
  SERVICES            the services this process hosts, comma-separated (default all three)
  ORDER_EVENTS        on: the shop's events flow to analytics; ARCHIVE_URL: and to a PostgreSQL
  ECOMMERCE_SKUS, ECOMMERCE_STOCK, ANALYTICS_RETENTION_MINUTES, ANALYTICS_MAX_EVENTS, FILE_*,
  RECEIVERS, INGEST_CHUNK, INGEST_IN_FLIGHT
                      the services' sizes and limits
  FAULTS_FILE, FAULT_*  injected faults (declines, transient failures, latency)
  RUST_LOG            the log's level (default info)
";

impl Hosting {
    /// The settings from the environment, with `store` unless `STORE` says otherwise.
    pub fn from_env(store: StoreKind) -> Result<Self, StackError> {
        let defaults = Self::default();
        Ok(Self {
            store: env_or("STORE", store, "memory or redis")?,
            redis_url: std::env::var("REDIS_URL").unwrap_or(defaults.redis_url),
            redis_ca: std::env::var_os("REDIS_CA").filter(|ca| !ca.is_empty()).map(Into::into),
            redis_prefix: std::env::var("REDIS_PREFIX").unwrap_or(defaults.redis_prefix),
            redis_connections: env_or("REDIS_CONNECTIONS", defaults.redis_connections, "a whole number")?,
            skus: env_or("ECOMMERCE_SKUS", defaults.skus, "a whole number")?,
            units: env_or("ECOMMERCE_STOCK", defaults.units, "a whole number")?,
            retention_minutes: env_or(
                "ANALYTICS_RETENTION_MINUTES",
                defaults.retention_minutes,
                "a whole number",
            )?,
            max_events: env_or("ANALYTICS_MAX_EVENTS", defaults.max_events, "a whole number")?,
            receivers: env_or("RECEIVERS", defaults.receivers, "a whole number")?,
            order_events: env_or("ORDER_EVENTS", Switch(false), "on or off")?.0,
            archive_url: std::env::var("ARCHIVE_URL").ok().filter(|url| !url.is_empty()),
            services: env_or(
                "SERVICES",
                ServiceList(defaults.services),
                "a comma-separated list of ecommerce, analytics, fileproc",
            )?
            .0,
            ingest_chunk: env_or("INGEST_CHUNK", defaults.ingest_chunk, "a whole number")?,
            ingest_in_flight: env_or("INGEST_IN_FLIGHT", defaults.ingest_in_flight, "a whole number")?,
            files: FileLimits::from_env()?,
            faults: FaultSettings::from_env()?,
        })
    }

    /// Connects to Redis (when the store is Redis) and builds the services this process hosts as
    /// dispatchers, joined by `links`.
    pub async fn host(&self, links: Links) -> Result<Hosted, StackError> {
        match self.store {
            StoreKind::Memory => self.memory_stores().host(self, links),
            StoreKind::Redis => self.redis_stores().await?.host(self, links),
        }
    }

    /// Connects to Redis (when the store is Redis) and starts the services this process hosts on
    /// `nats`: calls between them over NATS, events (when on) over JetStream.
    pub async fn start_on(&self, nats: &natsrpc::async_nats::Client) -> Result<Vec<Service>, StackError> {
        match self.store {
            StoreKind::Memory => self.memory_stores().start_on(self, nats).await,
            StoreKind::Redis => self.redis_stores().await?.start_on(self, nats).await,
        }
    }

    /// Whether this process hosts `service` (`SERVICES`).
    pub fn hosts(&self, service: &str) -> bool {
        self.services.contains(&service)
    }

    /// Who consumes the shop's events on this stack, each from a consumer of its own (a durable
    /// consumer, a consumer group, a queue) that every event reaches: analytics, and the archive
    /// when there is one.
    pub fn event_consumers(&self) -> Vec<&'static str> {
        let mut consumers = vec![links::ANALYTICS];
        if self.archive_url.is_some() {
            consumers.push(links::ARCHIVE);
        }
        consumers
    }

    /// The archive this process feeds: with events on, an archive, and analytics hosted here.
    fn archive(&self) -> Result<Option<Arc<archive::Archive>>, StackError> {
        match &self.archive_url {
            Some(url) if self.order_events && self.hosts(analytics::contracts::SERVICE) => {
                tracing::info!("archiving the shop's orders");
                Ok(Some(Arc::new(archive::Archive::new(url)?)))
            }
            _ => Ok(None),
        }
    }

    /// The Redis connections this stack uses.
    pub async fn redis_pool(&self) -> Result<RedisPool, StackError> {
        RedisPool::connect_with(
            &self.redis_url,
            self.redis_ca.as_deref(),
            self.redis_connections,
            &self.redis_prefix,
        )
        .await
    }

    fn memory_stores(
        &self,
    ) -> Stores<ecommerce::domain::MemoryStore, analytics::domain::MemoryStore, fileproc::domain::MemoryStore>
    {
        Stores {
            shop: ecommerce::domain::MemoryStore::with_catalog(self.skus, self.units),
            events: analytics::domain::MemoryStore::new(self.retention_ms(), self.faults.seed)
                .with_max_events(self.max_events),
            files: fileproc::domain::MemoryStore::new(self.files),
        }
    }

    async fn redis_stores(
        &self,
    ) -> Result<Stores<RedisShopStore, RedisEventStore, RedisFileStore>, StackError> {
        let pool = self.redis_pool().await?;
        let shop = RedisShopStore::new(pool.clone());
        shop.seed_catalog(self.skus, self.units).await.map_err(StackError::redis)?;
        tracing::info!(url = %natsrpc::redact_url(&self.redis_url), prefix = %self.redis_prefix, "state in redis");
        Ok(Stores {
            shop,
            events: RedisEventStore::new(pool.clone(), self.retention_ms()),
            files: RedisFileStore::new(pool, self.files),
        })
    }

    fn retention_ms(&self) -> u64 {
        self.retention_minutes.saturating_mul(60_000)
    }
}

/// One store of each service, of whatever kind.
struct Stores<A, B, C> {
    shop: A,
    events: B,
    files: C,
}

type Builders<A, B, C> = (
    natsrpc::ServiceBuilder<Arc<Shop<A>>>,
    natsrpc::ServiceBuilder<Arc<Analytics<B>>>,
    natsrpc::ServiceBuilder<Arc<FileProcessor<C>>>,
    Follower,
);

/// The services of one process, as dispatchers for a transport other than NATS.
pub struct Hosted {
    /// The services this process hosts.
    pub dispatchers: Vec<Dispatcher>,
    /// Hands the shop's events to this process's analytics, for the stack's event consumer.
    pub follower: Follower,
    /// Hands them to the archive, for the archive's consumer, when this process archives.
    pub archive: Option<Follower>,
}

impl std::fmt::Debug for Hosted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.dispatchers.iter().map(|d| d.service()).collect();
        f.debug_struct("Hosted").field("dispatchers", &names).finish_non_exhaustive()
    }
}

impl<A: ShopStore, B: EventStore, C: FileStore> Stores<A, B, C> {
    fn builders(self, hosting: &Hosting, links: Links) -> Builders<A, B, C> {
        // One fault source for each service, as each process of the NATS stack has its own from
        // the same settings.
        let faults = || Arc::new(Faults::new(hosting.faults.clone()));
        let n = hosting.receivers;
        let mut shop = Shop::new(self.shop, faults());
        let mut files =
            FileProcessor::new(self.files, faults()).with_checks_at_once(hosting.files.checks_at_once);
        if let Some(peers) = links.peers {
            shop = shop.with_peers(peers.clone());
            let forwarding = Forwarding {
                client: peers,
                chunk_size: hosting.ingest_chunk,
                in_flight: hosting.ingest_in_flight,
            };
            files = files.with_forwarding(forwarding);
        }
        if let Some(sink) = links.events {
            shop = shop.with_events(sink);
        }
        let analytics = Arc::new(Analytics::new(self.events, faults()));
        let follows = Arc::clone(&analytics);
        let follower: Follower = Arc::new(move |event| {
            let analytics = Arc::clone(&follows);
            Box::pin(async move {
                let followed = match event {
                    ecommerce::domain::ShopEvent::Placed(event) => analytics.order_placed(event).await,
                    ecommerce::domain::ShopEvent::Cancelled(event) => analytics.order_cancelled(event).await,
                };
                followed.map_err(Into::into)
            })
        });
        let shop = Arc::new(shop);
        if hosting.hosts(ecommerce::contracts::SERVICE) {
            // Gives back the stock of orders whose instance died mid-way; ends with the shop.
            shop.sweep(ecommerce::domain::SWEEP_EVERY);
            // Publishes again the events that did not go out (the broker away); ends with the shop,
            // and finds nothing to do when the shop publishes no events.
            shop.relay(ecommerce::domain::RELAY_EVERY);
        }
        (
            ecommerce::service(shop).receivers(n),
            analytics::service(analytics).receivers(n),
            fileproc::service(Arc::new(files)).receivers(n),
            follower,
        )
    }

    fn host(self, hosting: &Hosting, links: Links) -> Result<Hosted, StackError> {
        let (shop, events, files, follower) = self.builders(hosting, links);
        let mut dispatchers = Vec::new();
        if hosting.hosts(ecommerce::contracts::SERVICE) {
            dispatchers.push(Dispatcher::new(shop)?);
        }
        if hosting.hosts(analytics::contracts::SERVICE) {
            dispatchers.push(Dispatcher::new(events)?);
        }
        if hosting.hosts(fileproc::contracts::SERVICE) {
            dispatchers.push(Dispatcher::new(files)?);
        }
        let archive = hosting.archive()?.map(links::archive_follower);
        Ok(Hosted { dispatchers, follower, archive })
    }

    async fn start_on(
        self,
        hosting: &Hosting,
        nats: &natsrpc::async_nats::Client,
    ) -> Result<Vec<Service>, StackError> {
        let links = Links {
            peers: Some(natsrpc::Client::new(nats.clone())),
            events: hosting
                .order_events
                .then(|| Arc::new(links::NatsEvents(natsrpc::events::Publisher::new(nats.clone()))) as _),
        };
        let n = hosting.receivers;
        let (shop, mut events, files, _) = self.builders(hosting, links);
        if hosting.order_events {
            events = analytics::follow_orders(events);
        }
        let mut started = Vec::new();
        if hosting.hosts(ecommerce::contracts::SERVICE) {
            started.push(shop.start(nats).await?);
        }
        if hosting.hosts(analytics::contracts::SERVICE) {
            started.push(events.start(nats).await?);
        }
        if hosting.hosts(fileproc::contracts::SERVICE) {
            started.push(files.start(nats).await?);
        }
        if let Some(archive) = hosting.archive()? {
            started.push(archive::service(archive).receivers(n).start(nats).await?);
        }
        Ok(started)
    }
}

/// A list of services, each one of [`SERVICES`].
struct ServiceList(Vec<&'static str>);

impl FromStr for ServiceList {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        let mut services = Vec::new();
        for name in value.split(',').map(str::trim).filter(|name| !name.is_empty()) {
            let known = SERVICES.iter().find(|service| **service == name).ok_or(())?;
            if !services.contains(known) {
                services.push(*known);
            }
        }
        if services.is_empty() { Err(()) } else { Ok(Self(services)) }
    }
}

/// `on` or `off`.
struct Switch(bool);

impl FromStr for Switch {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        match value {
            "on" | "1" | "true" => Ok(Self(true)),
            "off" | "0" | "false" => Ok(Self(false)),
            _ => Err(()),
        }
    }
}
