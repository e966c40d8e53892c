//! The load generator: when each request is sent, and what is recorded of its answer.
//!
//! - [`load`]: the schedules (open loop, closed loop, steps) and the loops that keep them;
//! - [`closed_loop`]: the bare closed loop `echo-vs-raw` and `selfcheck` use;
//! - [`recorder`]: HdrHistograms per endpoint, per interval and overall, and verdicts by kind.

pub mod closed_loop;
pub mod load;
pub mod recorder;
