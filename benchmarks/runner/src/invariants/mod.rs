//! What must hold whatever the speed, checked while and after the load runs:
//!
//! - [`contention`]: many users reserving a few items; the stock books must balance (no unit
//!   sold twice or gone without a sale);
//! - [`convergence`]: every order placed followed into analytics: how long it takes to show, and
//!   whether it is counted exactly once;
//! - [`soak`]: latency drift and memory growth over a long steady load.

pub mod contention;
pub mod convergence;
pub mod soak;
