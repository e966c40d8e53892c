//! What must hold whatever the speed, checked while and after the load runs:
//!
//! - [`contention`]: many users reserving a few items; the stock books must balance (no unit
//!   sold twice or gone without a sale);
//! - [`convergence`]: every order placed followed into analytics: how long it takes to show, and
//!   whether it is counted exactly once;
//! - [`soak`]: latency drift and memory growth over a long steady load;
//! - [`archive`]: every order acknowledged must reach the stack's archive, and how far behind it
//!   falls while its database is down.

pub mod archive;
pub mod contention;
pub mod convergence;
pub mod soak;
