//! Retries with backoff, for calls that are safe to repeat.

use std::time::Duration;

/// Retries with exponential backoff and full jitter, for calls that are safe to repeat.
///
/// What is retried is what [`RpcError::is_retryable`](crate::RpcError::is_retryable) says can
/// succeed on another attempt: "no responders" (the service is restarting), no reply in time, and
/// the answers that say "not now" (503 `overloaded` and `unavailable`, 504 `timeout`). Any other
/// answer, a broken rule or a business refusal, is the request's own and is not asked again. A
/// client-wide policy applies to requests declared `idempotent`; a per-call
/// policy ([`CallOptions::retry`](super::CallOptions::retry)) applies to that call whatever its type says. Each wait is drawn
/// between zero and the exponential bound, so that clients that failed together do not all come
/// back at the same moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Bound of the wait before the second attempt.
    pub initial_backoff: Duration,
    /// The bound grows by this factor per attempt...
    pub multiplier: f64,
    /// ...up to this.
    pub max_backoff: Duration,
    /// Whether waits are drawn between zero and the bound (true) or are the bound itself.
    pub jitter: bool,
}

impl RetryPolicy {
    /// `max_attempts` attempts; waits bounded by `initial_backoff`, doubling, up to 2 s, jittered.
    pub fn exponential(max_attempts: u32, initial_backoff: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            initial_backoff,
            multiplier: 2.0,
            max_backoff: Duration::from_secs(2),
            jitter: true,
        }
    }

    /// The same policy with waits of exactly the bound.
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The wait before retry number `retry` (0 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = self.multiplier.powi(i32::try_from(retry).unwrap_or(i32::MAX));
        let bound = self.initial_backoff.mul_f64(factor).min(self.max_backoff);
        if self.jitter { bound.mul_f64(rand::random::<f64>()) } else { bound }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_jitter_stays_under_the_bound() {
        let exact = RetryPolicy::exponential(10, Duration::from_millis(100)).without_jitter();
        let waits: Vec<u128> = (0..7).map(|retry| exact.backoff(retry).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000]);
        let jittered = RetryPolicy::exponential(10, Duration::from_millis(100));
        let draws: Vec<Duration> = (0..200).map(|_| jittered.backoff(3)).collect();
        assert!(draws.iter().all(|wait| *wait <= Duration::from_millis(800)));
        assert!(draws.iter().any(|wait| *wait != draws[0]), "drawn, not fixed");
    }
}
