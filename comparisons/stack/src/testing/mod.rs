//! For the stacks' tests: the sample-parity check every stack must pass ([`parity`]), checks of
//! the services working together over any stack's transport ([`checks`]), and stack binaries run
//! as processes on free ports ([`spawn_http`]).

pub mod checks;
pub mod parity;
mod process;

pub use process::{free_port, spawn_http};
