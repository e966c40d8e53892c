//! The machine the run drives: stacks as running processes, and what they use.
//!
//! - [`stacks`]: start a stack's processes, check them ready, stop them by PID;
//! - [`process`]: CPU time and memory of a process, from `/proc`;
//! - [`resources`]: groups of processes (a stack's, each broker's, the generator's) sampled over
//!   a measurement;
//! - [`environment`]: the machine and software a run ran on.

pub mod environment;
pub mod process;
pub mod resources;
pub mod stacks;
