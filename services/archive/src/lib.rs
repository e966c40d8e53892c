//! # archive
//!
//! Orders of record: every order the shop places or cancels, archived in PostgreSQL from the
//! stack's own event path (a JetStream durable consumer on NATS, a Redis stream consumer group on
//! HTTP+Redis, a durable queue on HTTP+RabbitMQ), each acknowledged to its broker only once its
//! row is committed. While the database is down the events wait in the broker, and they are
//! archived once it is back; an event delivered twice is archived once (the table's key is the
//! order and the event).
//!
//! ## Layout
//! - [`store`]: [`Archive`], the table and its migrations (`migrations/`, applied on first use).
//! - [`contracts`]: `archive.get_archived_order`, an order's record as archived.
//! - [`service`](mod@service): the archive on NATS: its listeners, and that endpoint.
//! - [`server`]: a PostgreSQL server of one's own, for the benchmark's private databases and tests.
//! - [`error`](mod@error): [`ArchiveError`].
//!
//! ```no_run
//! use archive::{Archive, ArchivedEvent};
//! use ecommerce_contracts::events::OrderPlacedEvent;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let archive = Archive::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
//! let event = OrderPlacedEvent {
//!     order_id: "ord_example".into(),
//!     customer_id: "cus_1".into(),
//!     amount_cents: 1250,
//!     currency: "EUR".into(),
//!     units: 2,
//!     placed_at_ms: 1,
//! };
//! archive.placed(&event).await?;
//! archive.placed(&event).await?; // delivered again: still one row
//! assert_eq!(archive.holds(ArchivedEvent::Placed, &["ord_example".into()]).await?.len(), 1);
//! # Ok::<(), archive::ArchiveError>(()) }).unwrap();
//! ```

pub mod contracts;
pub mod error;
pub mod server;
pub mod service;
pub mod store;

pub use error::ArchiveError;
pub use service::service;
pub use store::{Archive, ArchivedEvent, Recorded};
