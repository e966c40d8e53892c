//! `natsrpc`, the command line of the framework: list the services on a NATS server, show one's
//! endpoints, schemas and figures (the NATS Services API, ADR-32, which any framework's services
//! answer), and call an endpoint with its request checked against the endpoint's JSON Schema
//! before it is sent. The NATS CLI does the first three for any service; this one needs nothing
//! but the framework's toolchain, and knows natsrpc's envelope and figures.
//!
//! ```text
//! natsrpc ls                                   the services, one line each
//! natsrpc info ecommerce                       its endpoints, subjects and schemas
//! natsrpc stats ecommerce                      requests, errors, latency per endpoint
//! natsrpc schema ecommerce create_order        the request's JSON Schema
//! natsrpc call ecommerce.create_order order.json
//! ```
//!
//! - [`discovery`]: asking the Services API and gathering every instance's answer;
//! - [`schema`]: checking a request against a JSON Schema, every broken field by path;
//! - [`show`]: what the commands print.

pub mod discovery;
pub mod schema;
pub mod show;

/// What can go wrong, and the exit status it ends the program with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No connection to NATS.
    #[error("{0}")]
    Connect(#[from] natsrpc::RpcError),
    /// NATS refused or dropped a request.
    #[error("NATS: {0}")]
    Nats(String),
    /// Nothing answered.
    #[error("{0}")]
    NoAnswer(String),
    /// The request breaks its endpoint's schema, or is not JSON: it was not sent.
    #[error("{0}")]
    Refused(String),
    /// The service answered with an error.
    #[error("the service answered an error")]
    Answered,
    /// A file given is not what it should be.
    #[error("{0}")]
    Input(String),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl CliError {
    /// Its exit status: 1 for a request refused or answered with an error, 3 for no answer.
    pub fn status(&self) -> u8 {
        match self {
            CliError::Refused(_) | CliError::Answered => 1,
            CliError::Read { .. } | CliError::Input(_) => 2,
            CliError::Connect(_) | CliError::Nats(_) | CliError::NoAnswer(_) => 3,
        }
    }
}
