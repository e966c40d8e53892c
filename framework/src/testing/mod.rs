//! Testing services: call endpoints in-process with no NATS server ([`Harness`]), start a private
//! `nats-server` on a free port for tests that stop or restart the broker ([`NatsServer`]), and keep
//! generated files (samples, schemas) current ([`golden_file`], [`golden_schemas`]), run a service
//! binary as its own process ([`ServiceProcess`]), describe requests made to break a rule
//! ([`Invalid`]), keep a service's contract from one release to the next ([`compatible_with`]),
//! read its metrics as Prometheus would ([`scrape_metrics`]), and collect the spans it exports
//! ([`OtlpCollector`]).

mod contract_check;
mod golden;
mod harness;
mod invalid;
mod nats_server;
mod otlp_collector;
mod pki;
mod ports;
mod scrape;
mod service_process;

pub use contract_check::compatible_with;
pub use golden::{golden_file, golden_json, golden_samples, golden_schemas};
pub use harness::{Harness, RawReply};
pub use invalid::{Invalid, Sample};
pub use nats_server::{NatsServer, wait_for_port};
pub use otlp_collector::{CollectedSpan, OtlpCollector};
pub use pki::TestCa;
pub use ports::free_port;
pub use scrape::scrape_metrics;
pub use service_process::{ServiceProcess, endpoint_names};
