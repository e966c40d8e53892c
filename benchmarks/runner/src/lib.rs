//! The benchmark runner: starts the stacks of `config/benchmark-config.yaml`, drives each
//! scenario's load at them, checks every answer, and writes the run's `results.json`
//! ([`bench_results`]), which the report ([`bench_report`]) draws.
//!
//! One measurement, in the order the code runs it ([`run`]):
//! 1. [`config`] reads the YAML strictly, with the profile and the environment's overrides;
//! 2. [`system`] starts the stack's processes (and any broker of its own), checks them ready, and
//!    samples their CPU and memory from `/proc`;
//! 3. [`workload`] turns the scenario's mix into ready-made request bodies, valid and invalid;
//! 4. [`generator`] sends them on a schedule (open loop, closed loop, steps, soak) and records
//!    each answer's latency into histograms;
//! 5. [`target`] is the other end of the wire: the client of each transport, and the check of
//!    every answer into a verdict;
//! 6. [`invariants`] checks what must hold whatever the speed (stock books under contention,
//!    orders counted once in analytics, drift and leaks in a soak).
//!
//! [`selfcheck`] measures the load generator itself against reference generators.
//! The binaries: `bench` (runs), `stacks` (starts and stops stacks by hand), `echo-vs-raw` (the
//! framework's echo against a raw async-nats responder).

pub mod config;
pub mod generator;
pub mod invariants;
pub mod run;
pub mod selfcheck;
pub mod system;
pub mod target;
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
    /// Reading or writing the run's results failed.
    #[error(transparent)]
    Results(#[from] bench_results::ResultsError),
    /// Drawing the report failed.
    #[error(transparent)]
    Report(#[from] bench_report::ReportError),
}
