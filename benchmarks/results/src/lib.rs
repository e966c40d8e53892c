//! `results.json`: everything a benchmark run measured, in a layout of its own.
//!
//! The runner (`bench-runner`) writes it; the report (`bench-report`) reads only it, so any old
//! run can be reported again. This crate is that contract and nothing else: serde types, the
//! figures derived from them (medians, spreads, which step was sustained, whether the stock books
//! balance), the CSV exports, and the verdict for CI systems ([`verdict`]: JSON, CSV, JUnit). It
//! depends on serde and serde_json (and thiserror for its error): no runner, no transport, no
//! service.
//!
//! The configuration's types are not reused here: the run's settings are recorded as copies
//! ([`settings`]), so that the YAML can change without changing what older files say.
//!
//! ```
//! use bench_results::{Spread, RunResults};
//!
//! // Medians and ranges over repetitions are what the report compares.
//! let throughput = Spread::of([9_800.0, 10_400.0, 10_100.0]);
//! assert_eq!(throughput.median, 10_100.0);
//! assert!(throughput.relative_range() < 0.06);
//!
//! // A run folder's file, read back whatever runner version wrote it (or a clear error).
//! let missing = RunResults::read(std::path::Path::new("/nonexistent/results.json"));
//! assert!(missing.unwrap_err().to_string().contains("/nonexistent/results.json"));
//! ```

mod csv;
pub mod duration_text;
pub mod error_kind;
pub mod invariants;
pub mod measurement;
pub mod outages;
pub mod percentiles;
pub mod run;
pub mod settings;
pub mod system;
pub mod verdict;

use std::path::PathBuf;

pub use error_kind::{ErrorKind, NoAnswer};
pub use invariants::{
    ContentionResult, ConvergenceResult, Drift, ItemBalance, MemoryTrend, MemoryVerdict, SoakResult,
};
pub use measurement::{
    CpuCost, EndpointResult, IntervalResult, Measurement, Spread, StepResult, Summary, ValidationResult,
};
pub use outages::{ArchiveResult, FaultsResult, OutageResult};
pub use percentiles::Percentiles;
pub use run::{ExpectationCheck, RunResults, SCHEMA, Scaled, ScenarioResult, StackResult};
pub use settings::{
    Expectations, Faults, Flow, Limits, Load, MixEntry, PayloadSize, Phase, RunSettings, Sustained,
};
pub use system::{Environment, ResourceGroup, Sample, Usage};

/// The names the runner gives its raw echo controls (a bare async-nats responder and a bare
/// hyper server): the floor of what each transport costs, against which the report sets the
/// framework's echo.
pub const ECHO_STACKS: [&str; 2] = ["nats-raw-echo", "http-raw-echo"];

/// Why results could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not results JSON (or not of a layout this crate knows).
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: serde_json::Error,
    },
    /// A newer runner wrote it.
    #[error("{path}: schema {schema} is newer than this build reads ({SCHEMA}); update it")]
    Newer {
        /// The file.
        path: PathBuf,
        /// The layout version it says it has.
        schema: u32,
    },
}
