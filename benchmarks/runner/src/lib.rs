//! The benchmark runner: starts the stacks of `config/benchmark-config.yaml`, drives each
//! scenario's load at them, checks every answer, and writes the run's `results.json`
//! ([`bench_results`]), which the report ([`bench_report`]) draws.
//!
//! [`endpoint`] is the catalog of what the runner can send; [`own_request`] sends bodies of one's
//! own to any subject or path. One measurement, in the order the code
//! runs it ([`run`]):
//! 1. [`config`] reads the YAML strictly, with the profile and the environment's overrides;
//! 2. [`system`] starts the stack's processes (and any broker of its own), checks them ready, and
//!    samples their CPU and memory from `/proc`;
//! 3. [`workload`] turns the scenario's mix into ready-made request bodies, valid and invalid;
//! 4. [`generator`] sends them on a schedule (open loop, closed loop, steps, soak) and records
//!    each answer's latency into histograms; [`firing`] is what each planned request does: draw,
//!    send, check, record (and run a flow's steps in turn);
//! 5. [`target`] is the other end of the wire: the client of each transport, and the check of
//!    every answer into a verdict;
//! 6. [`invariants`] checks what must hold whatever the speed (stock books under contention,
//!    orders counted once in analytics, drift and leaks in a soak);
//! 7. [`outage`] takes a component of the stack down mid-run (on brokers of its own) and measures
//!    how the stack recovers.
//!
//! [`selfcheck`] measures the load generator itself against reference generators.
//! The binaries: `bench` (runs), `stacks` (starts and stops stacks by hand), `echo-vs-raw` (the
//! framework's echo against a raw async-nats responder).

pub mod config;
pub mod draw;
pub mod endpoint;
pub mod firing;
pub mod generator;
pub mod invariants;
pub mod outage;
pub mod own_request;
pub mod progress;
pub mod run;
pub mod selfcheck;
pub mod system;
pub mod target;
pub mod workload;

/// This crate's error.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A program could not be started, or waited for.
    #[error("{program}: {source}")]
    Program {
        /// What it is (`wrk`, a stack's process).
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// JSON the runner reads or writes of its own (a stack's state, the self-check's figures).
    #[error("{}: {source}", what.display())]
    Json {
        /// The file read, or to be written.
        what: std::path::PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Talking to NATS failed.
    #[error("NATS: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Clearing a stack's state from Redis failed.
    #[error("Redis: {0}")]
    Store(#[from] stack::StackError),
    /// A task of the run panicked or was cancelled.
    #[error("a task of the run failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A stack's process misbehaved: it exited, nothing listened, it was not ready in time.
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
    /// A value the runner made could not be written as JSON (a payload, the faults' settings).
    #[error("{what}: {source}")]
    Serialize {
        /// What it was.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A stack's NATS settings cannot make a connection (a file they name, a setting without
    /// its pair).
    #[error("a stack's NATS settings: {0}")]
    NatsSettings(#[source] natsrpc::RpcError),
    /// A stack's TLS settings cannot make a client (a CA file that cannot be read).
    #[error("a stack's TLS settings: {0}")]
    Tls(#[from] http_api::ServeError),
}

impl BenchError {
    /// For `map_err`: an I/O error on `path`.
    pub fn io(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BenchError::Io { path, source }
    }

    /// For `map_err`: a program that could not be started or waited for.
    pub fn program(program: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let program = program.into();
        move |source| BenchError::Program { program, source }
    }

    /// For `map_err`: JSON of the file `what` that could not be read or made.
    pub fn json(what: impl Into<std::path::PathBuf>) -> impl FnOnce(serde_json::Error) -> Self {
        let what = what.into();
        move |source| BenchError::Json { what, source }
    }

    /// For `map_err`: NATS failed.
    pub fn nats(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        BenchError::Nats(Box::new(error))
    }
}
