//! Per-endpoint statistics, reported through `$SRV.STATS`.
//!
//! Counters are atomics so the request path never waits on them; the latency histogram sits behind
//! a mutex that is held for one `record` (tens of nanoseconds).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::discovery::{EndpointData, EndpointStats, Latency};
use crate::error::ServiceError;

/// Latencies above this are recorded as this (one hour, in microseconds).
const MAX_TRACKED_MICROS: u64 = 3_600_000_000;

#[derive(Debug)]
pub(crate) struct EndpointCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    overloaded: AtomicU64,
    failures: AtomicU64,
    processing_nanos: AtomicU64,
    validation_nanos: AtomicU64,
    last_error: Mutex<String>,
    latency_micros: Mutex<Histogram<u64>>,
    /// Errors by status and code, for metrics: at most [`MAX_CODES`] codes, the rest counted as
    /// [`OTHER_CODE`]. Locked only when a request fails.
    errors_by_code: Mutex<Vec<CodeCount>>,
}

/// Distinct error codes an endpoint counts apart. A handler's business codes are its own words,
/// and a metric's label values must stay few: the first this many are kept.
pub(crate) const MAX_CODES: usize = 32;

/// The code errors beyond the first [`MAX_CODES`] codes are counted under.
pub(crate) const OTHER_CODE: &str = "other";

/// Errors of one status and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodeCount {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) count: u64,
}

/// An endpoint's figures for metrics, read at a scrape.
#[derive(Debug, Clone, Default)]
pub(crate) struct MetricsSnapshot {
    pub(crate) requests: u64,
    pub(crate) errors: Vec<CodeCount>,
    /// Requests whose latency was at most each of [`LATENCY_BUCKETS_MICROS`] (cumulative).
    pub(crate) buckets: [u64; LATENCY_BUCKETS_MICROS.len()],
    /// Requests recorded in the histogram (the `+Inf` bucket).
    pub(crate) count: u64,
    pub(crate) processing_nanos: u64,
    pub(crate) validation_nanos: u64,
}

/// The latency histogram's bucket bounds for metrics, in microseconds: 100 us to 10 s, the
/// span between a cached read and a saga that waits on a slow store.
pub(crate) const LATENCY_BUCKETS_MICROS: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

impl EndpointCounters {
    pub(crate) fn new() -> Self {
        // 3 significant figures over 1 us .. 1 h: about 40 KiB per endpoint.
        #[allow(clippy::expect_used)] // constant, valid bounds: this cannot fail
        let histogram = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3).expect("valid bounds");
        Self {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            processing_nanos: AtomicU64::new(0),
            validation_nanos: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
            latency_micros: Mutex::new(histogram),
            errors_by_code: Mutex::new(Vec::new()),
        }
    }

    /// Records the time one request's validation took.
    #[cfg_attr(feature = "unvalidated-control", allow(dead_code))] // that build does not validate
    pub(crate) fn record_validation(&self, validation: Duration) {
        self.validation_nanos.fetch_add(nanos(validation), Ordering::Relaxed);
    }

    /// Records one finished request, and its error when it failed.
    pub(crate) fn record(&self, elapsed: Duration, error: Option<&ServiceError>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.processing_nanos.fetch_add(nanos(elapsed), Ordering::Relaxed);
        if let Some(error) = error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            if error.kind == crate::ErrorKind::Overloaded {
                self.overloaded.fetch_add(1, Ordering::Relaxed);
            }
            if is_failure(error.status) {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            // Messages are written to carry no secrets (decode errors name no values), but they may
            // name what the caller sent (an unknown subject): escaped and bounded like a header.
            let last = format!("{}:{}", error.status, crate::escape::header_value(&error.message));
            if let Ok(mut slot) = self.last_error.lock() {
                *slot = last;
            }
            self.count_code(error);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_TRACKED_MICROS);
        if let Ok(mut histogram) = self.latency_micros.lock() {
            histogram.saturating_record(micros);
        }
    }

    fn count_code(&self, error: &ServiceError) {
        let Ok(mut counts) = self.errors_by_code.lock() else { return };
        let known = counts.iter_mut().find(|c| c.status == error.status && c.code == error.code);
        if let Some(known) = known {
            known.count += 1;
            return;
        }
        // A code becomes a label value: kept only when it is a plain word, as natsrpc's and
        // well-behaved handlers' codes are.
        let plain = error.code.len() <= 64
            && !error.code.is_empty()
            && error.code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        let code =
            if plain && counts.len() < MAX_CODES { error.code.clone() } else { OTHER_CODE.to_string() };
        match counts.iter_mut().find(|c| c.status == error.status && c.code == code) {
            Some(other) => other.count += 1,
            None => counts.push(CodeCount { status: error.status, code, count: 1 }),
        }
    }

    /// The endpoint's figures for metrics: counts, errors by code and cumulative latency buckets.
    pub(crate) fn metrics(&self) -> MetricsSnapshot {
        let mut snapshot = MetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            processing_nanos: self.processing_nanos.load(Ordering::Relaxed),
            validation_nanos: self.validation_nanos.load(Ordering::Relaxed),
            errors: self.errors_by_code.lock().map(|c| c.clone()).unwrap_or_default(),
            ..MetricsSnapshot::default()
        };
        if let Ok(histogram) = self.latency_micros.lock() {
            snapshot.count = histogram.len();
            for recorded in histogram.iter_recorded() {
                let value = recorded.value_iterated_to();
                let first = LATENCY_BUCKETS_MICROS.partition_point(|bound| *bound < value);
                for bucket in &mut snapshot.buckets[first..] {
                    *bucket += recorded.count_at_value();
                }
            }
        }
        snapshot
    }

    /// The endpoint's figures now, as `$SRV.STATS` reports them; times in nanoseconds, as ADR-32
    /// wants. `id` is the endpoint's name, subject and queue group.
    pub(crate) fn snapshot(&self, id: (&str, &str, &str), in_flight: usize) -> EndpointStats {
        let (name, subject, queue_group) = id;
        let requests = self.requests.load(Ordering::Relaxed);
        let processing_nanos = self.processing_nanos.load(Ordering::Relaxed);
        let validation_nanos = self.validation_nanos.load(Ordering::Relaxed);
        let average = |total: u64| total.checked_div(requests).unwrap_or(0);
        let latency = match self.latency_micros.lock() {
            Ok(h) => Latency {
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p95: h.value_at_quantile(0.95),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
            },
            Err(_) => Latency::default(),
        };
        EndpointStats {
            name: name.to_string(),
            subject: subject.to_string(),
            queue_group: queue_group.to_string(),
            num_requests: requests,
            num_errors: self.errors.load(Ordering::Relaxed),
            processing_time: processing_nanos,
            average_processing_time: average(processing_nanos),
            last_error: self.last_error.lock().map(|s| s.clone()).unwrap_or_default(),
            data: EndpointData {
                latency_us: latency,
                validation: crate::server::VALIDATION.to_string(),
                validation_time: validation_nanos,
                average_validation_time: average(validation_nanos),
                validation_share: if processing_nanos == 0 {
                    0.0
                } else {
                    validation_nanos as f64 / processing_nanos as f64
                },
                in_flight,
                num_overloaded: self.overloaded.load(Ordering::Relaxed),
                num_failures: self.failures.load(Ordering::Relaxed),
            },
        }
    }
}

/// Whether an answer with `status` is the service's failure rather than the request's own answer:
/// a 500, 503 or 504, as a circuit breaker counts them.
pub(crate) fn is_failure(status: u16) -> bool {
    matches!(status, 500 | 503 | 504)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
