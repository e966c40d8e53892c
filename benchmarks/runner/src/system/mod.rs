//! The machine the run drives: stacks as running processes, and what they use.
//!
//! - [`stacks`]: start a stack's processes, check them ready, stop them by PID;
//! - [`balancer`]: HAProxy in front of an HTTP stack's instances;
//! - [`private_brokers`]: a stack on brokers of its own, for outages that must not touch the
//!   shared ones;
//! - [`proxy`]: a TCP proxy between a stack and its broker, whose connections an outage cuts;
//! - [`process`]: CPU time and memory of a process, from `/proc`;
//! - [`resources`]: groups of processes (a stack's, each broker's, the generator's) sampled over
//!   a measurement;
//! - [`environment`]: the machine and software a run ran on.

pub mod balancer;
pub mod environment;
pub mod private_brokers;
pub mod process;
pub mod proxy;
pub mod resources;
pub mod stacks;
