//! Reproducible draws: every random choice of a run (which request, which body, when a Poisson
//! arrival comes) is a SplitMix64 step from the run's seed and a number, so that the same seed
//! gives the same run, whatever the threads did.

/// A fast, well-mixed 64-bit step (SplitMix64): advances `state` and answers the next value.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `bits` as a number from 0 (included) to 1 (excluded), from its top 53 bits.
pub fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}
