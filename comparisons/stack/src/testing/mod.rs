//! For the stacks' tests: the sample-parity check every stack must pass ([`parity`]), checks of
//! the services working together over any stack's transport ([`checks`]), stack binaries run
//! as processes on free ports ([`spawn_http`]), a private Redis to stall ([`RedisServer`]), a private
//! RabbitMQ with a user, a virtual host and TLS of its own ([`RabbitServer`]), and
//! the hostile-input corpus replayed through any transport ([`hostile`]), and requests made to
//! break the services from arbitrary bytes, for property tests and fuzzing ([`fuzz`]), and what
//! tests of a stack's archive share ([`archived`]).

pub mod archived;
pub mod checks;
pub mod fuzz;
pub mod hostile;
pub mod parity;
mod process;
mod rabbit_server;
mod redis_server;

pub use process::{free_port, restock_until_ok, spawn_http};
pub use rabbit_server::{RabbitServer, RabbitTls};
pub use redis_server::RedisServer;
