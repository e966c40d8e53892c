//! criterion micro-benchmarks of what one request costs inside a process, with no network:
//!
//! - `benches/decode_validate.rs`: decoding plus validating a nested order, valid and with
//!   one or many violations (`cargo bench -p micro-benchmarks --bench decode_validate`);
//! - `benches/services.rs`: each service's contracts by size and by violation, JSON against
//!   MessagePack, the in-process dispatch and the envelope (`cargo bench -p micro-benchmarks --bench services`).
//!
//! The report of a benchmark run shows the latest estimates criterion left in `target/criterion`.
//! This crate has no code of its own: the benchmarks measure the framework's and the services'.
