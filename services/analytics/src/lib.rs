//! # analytics
//!
//! The analytics service: events in (one at a time, or in batches accepted partially), aggregates
//! out (counts, sums and percentiles per type, per-minute series, top-N). Memory is bounded by a
//! retention window; reads run concurrently with ingestion.
//!
//! ## Layout
//! - [`contracts`]: request and response types and their validation rules.
//! - [`domain`]: [`Analytics`](domain::Analytics) over an [`EventStore`](domain::EventStore), with
//!   an in-memory store of per-minute aggregates.
//! - [`error`]: [`AnalyticsError`] and its mapping to the wire.
//! - [`payloads`]: a seeded generator of valid and invalid requests for every endpoint.
//! - [`service`](mod@service): the natsrpc service; `src/main.rs` serves it (`cargo run --release -p analytics`).
//!
//! ```
//! use std::sync::Arc;
//! use analytics::contracts::{RETENTION_MS, now_ms};
//! use analytics::domain::{Analytics, MemoryStore};
//! use analytics::payloads::{Payloads, Size};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let app = Arc::new(Analytics::new(MemoryStore::new(RETENTION_MS, 1), Arc::new(faults::Faults::none())));
//! let api = natsrpc::testing::Harness::new(analytics::service(app))?;
//! let mut payloads = Payloads::new(7, now_ms());
//! let batch = payloads.ingest_batch(Size::Small);
//! assert_eq!(api.call(&batch).await?.accepted as usize, batch.events.len());
//! let totals = api.call(&payloads.query_aggregates()).await?;
//! assert_eq!(totals.types.iter().map(|t| t.count).sum::<u64>(), batch.events.len() as u64);
//! # Ok::<(), natsrpc::RpcError>(()) }).unwrap();
//! ```

pub use analytics_contracts as contracts;
pub mod domain;
pub mod error;
pub mod payloads;
pub mod service;

pub use error::AnalyticsError;
pub use service::{follow_orders, service};
