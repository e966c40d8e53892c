//! The other end of the wire: what a stack is to the runner.
//!
//! - [`client`]: one request to a stack over its transport (NATS, HTTP, HTTPS), the status and
//!   body back;
//! - [`check`]: every answer judged against what was sent into a verdict;
//! - [`raw_echo`]: the raw echo responders, each transport's ceiling on this machine.

pub mod check;
pub mod client;
pub mod raw_echo;
