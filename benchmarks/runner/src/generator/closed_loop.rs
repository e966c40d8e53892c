//! Closed-loop load: `concurrency` workers each send a request, wait for its reply, and send the
//! next. Throughput is what the system sustains at that concurrency; latency is service time.
//! (Open-loop load, which measures from a planned send time, is the runner's job.)

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// What one closed-loop run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Requests answered successfully while measuring.
    pub ok: u64,
    /// Requests that failed while measuring.
    pub errors: u64,
    /// The measuring window.
    pub elapsed: Duration,
    /// Latency of successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency percentile in microseconds (`q` in 0..=1).
    pub fn percentile_us(&self, q: f64) -> u64 {
        self.latency_us.value_at_quantile(q)
    }
}

fn histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)] // constant, valid bounds
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// Runs `call` from `concurrency` workers: first for `warmup` (discarded), then for `duration`.
/// `call` returns whether the request succeeded.
pub async fn run<F, Fut>(concurrency: usize, warmup: Duration, duration: Duration, call: F) -> LoadResult
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let measuring = Arc::new(AtomicBool::new(false));
    let stopping = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (call, measuring, stopping) =
                (Arc::clone(&call), Arc::clone(&measuring), Arc::clone(&stopping));
            tokio::spawn(async move {
                let (mut ok, mut errors, mut latency) = (0u64, 0u64, histogram());
                while !stopping.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let success = call().await;
                    if measuring.load(Ordering::Relaxed) && !stopping.load(Ordering::Relaxed) {
                        if success {
                            ok += 1;
                            latency.saturating_record(sent.elapsed().as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (ok, errors, latency)
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stopping.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();

    let mut result = LoadResult { ok: 0, errors: 0, elapsed, latency_us: histogram() };
    for worker in workers {
        if let Ok((ok, errors, latency)) = worker.await {
            result.ok += ok;
            result.errors += errors;
            let _ = result.latency_us.add(&latency);
        }
    }
    result
}
