//! natsrpc's benchmarks: load generation and measurement shared by the benchmark binaries.
//!
//! ## Layout
//! - [`closed_loop`]: N workers each keep one request in flight; latency into HdrHistograms.
//! - [`config`]: `config/benchmark-config.yaml`, read strictly.
//! - [`contention`], [`convergence`], [`soak`]: what the scenarios of services talking to each
//!   other check beyond latency (zero oversell, every order counted once, drift and leaks).
//! - [`stacks`]: the stacks of the config as running processes: start, ready check, stop by PID.
//! - [`process`]: CPU seconds and RSS of processes, read from `/proc`.
//! - `src/bin/echo-vs-raw.rs`: the framework's echo endpoint against a raw async-nats responder.
//! - `benches/`: criterion micro-benchmarks (decode plus validate).

pub mod check;
pub mod client;
pub mod closed_loop;
pub mod config;
pub mod contention;
pub mod convergence;
pub mod environment;
pub mod load;
pub mod process;
pub mod raw_echo;
pub mod recorder;
pub mod report;
pub mod resources;
pub mod results;
pub mod run_secrets;
pub mod runner;
pub mod selfcheck;
pub mod soak;
pub mod stacks;
pub mod workload;

/// This crate's error.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Talking to NATS failed.
    #[error("NATS: {0}")]
    Nats(String),
    /// Starting, watching or stopping a process failed.
    #[error("process: {0}")]
    Process(String),
    /// The configuration is wrong (the message names the file, line and key).
    #[error("config: {0}")]
    Config(String),
    /// A bad command-line argument.
    #[error("usage: {0}")]
    Usage(String),
    /// Something this run did not start already answers a stack's subjects or holds its port.
    #[error("occupied: {0}")]
    Occupied(String),
    /// A stack's binaries are not the build its configuration says (missing, or validation on
    /// where it should be off, or off where it should be on).
    #[error("build: {0}")]
    Build(String),
}
