//! For the stacks' tests: the sample-parity check every stack must pass ([`parity`]), and stack
//! binaries run as processes on free ports ([`spawn_http`]).

pub mod parity;
mod process;

pub use process::{free_port, spawn_http};
