//! # fileproc
//!
//! The file-processing service: chunked, resumable uploads checked chunk by chunk and as a whole
//! (SHA-256), then through a validation pipeline (size limits, type by magic bytes, content rules
//! such as a CSV header and column types); and jobs over many records with per-record errors.
//!
//! ## Layout
//! - [`contracts`]: request and response types and their validation rules.
//! - [`domain`]: the [`FileProcessor`](domain::FileProcessor) over a [`FileStore`](domain::FileStore)
//!   with an in-memory store, and the validation [`pipeline`](domain::pipeline).
//! - [`error`]: [`FileError`] and its mapping to the wire.
//! - [`payloads`]: a seeded generator of files, chunks and jobs, valid and invalid.
//! - [`service`](mod@service): the natsrpc service; `src/main.rs` serves it (`cargo run --release -p fileproc`).
//!
//! ```
//! use std::sync::Arc;
//! use fileproc::domain::{FileProcessor, MemoryStore};
//! use fileproc::payloads::Payloads;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let app = Arc::new(FileProcessor::new(MemoryStore::default(), Arc::new(faults::Faults::none())));
//! let api = natsrpc::testing::Harness::new(fileproc::service(app))?;
//! let file = Payloads::new(1).csv_file(100);
//! let started = api.call(&file.begin()).await?;
//! for chunk in file.chunks(&started.upload_id, 1024) {
//!     api.call(&chunk).await?;
//! }
//! let done = api.call(&fileproc::contracts::CompleteUpload { upload_id: started.upload_id }).await?;
//! assert_eq!(done.rows, Some(100));
//! # Ok::<(), natsrpc::RpcError>(()) }).unwrap();
//! ```

pub use fileproc_contracts as contracts;
pub mod domain;
pub mod error;
pub mod payloads;
pub mod service;

pub use error::FileError;
pub use service::service;
