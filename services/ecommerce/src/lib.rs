//! # ecommerce
//!
//! The e-commerce service: orders, stock and payments. The contracts and the domain are free of
//! any transport, so the NATS service here and the HTTP stacks of the comparison share them.
//!
//! ## Layout
//! - [`contracts`]: request and response types and their validation rules (`create_order`,
//!   `get_order`, `cancel_order`, `reserve_inventory`, `restock`).
//! - [`domain`]: the [`Shop`](domain::Shop), its [`ShopStore`](domain::ShopStore) trait with an
//!   in-memory store, and a simulated payment gateway.
//! - [`error`]: [`ShopError`] and its mapping to the wire.
//! - [`payloads`]: a seeded generator of valid and invalid requests for every endpoint.
//! - [`service`](mod@service): the natsrpc service; `src/main.rs` serves it (`cargo run --release -p ecommerce`).
//!
//! ```
//! use std::sync::Arc;
//! use ecommerce::contracts::Restock;
//! use ecommerce::domain::{MemoryStore, Shop};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let shop = Arc::new(Shop::new(MemoryStore::with_catalog(10, 5), Arc::new(faults::Faults::none())));
//! let harness = natsrpc::testing::Harness::new(ecommerce::service(shop))?;
//! let level = harness.call(&Restock { sku: "SKU-00001".into(), quantity: 3 }).await?;
//! assert_eq!(level.available, 8);
//! # Ok::<(), natsrpc::RpcError>(()) }).unwrap();
//! ```

pub use ecommerce_contracts as contracts;
pub mod domain;
pub mod error;
pub mod payloads;
pub mod service;

pub use error::ShopError;
pub use service::service;
