//! Testing services: call endpoints in-process with no NATS server ([`Harness`]), or start a private
//! `nats-server` on a free port for tests that stop or restart the broker ([`NatsServer`]).

mod harness;
mod nats_server;

pub use harness::{Harness, RawReply};
pub use nats_server::NatsServer;
