//! For the stacks' tests: the sample-parity check every stack must pass ([`parity`]), checks of
//! the services working together over any stack's transport ([`checks`]), stack binaries run
//! as processes on free ports ([`spawn_http`]), and a private Redis to stall ([`RedisServer`]).

pub mod checks;
pub mod parity;
mod process;
mod redis_server;

pub use process::{free_port, spawn_http};
pub use redis_server::RedisServer;
