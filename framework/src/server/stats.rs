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
    processing_nanos: AtomicU64,
    validation_nanos: AtomicU64,
    last_error: Mutex<String>,
    latency_micros: Mutex<Histogram<u64>>,
}

impl EndpointCounters {
    pub(crate) fn new() -> Self {
        // 3 significant figures over 1 us .. 1 h: about 40 KiB per endpoint.
        #[allow(clippy::expect_used)] // constant, valid bounds: this cannot fail
        let histogram = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3).expect("valid bounds");
        Self {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            processing_nanos: AtomicU64::new(0),
            validation_nanos: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
            latency_micros: Mutex::new(histogram),
        }
    }

    /// Records one finished request, and its error when it failed.
    pub(crate) fn record(&self, elapsed: Duration, validation: Duration, error: Option<&ServiceError>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.processing_nanos.fetch_add(nanos(elapsed), Ordering::Relaxed);
        self.validation_nanos.fetch_add(nanos(validation), Ordering::Relaxed);
        if let Some(error) = error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            // Messages are written to carry no secrets (decode errors name no values), but they may
            // name what the caller sent (an unknown subject): escaped and bounded like a header.
            let last = format!("{}:{}", error.status, crate::escape::header_value(&error.message));
            if let Ok(mut slot) = self.last_error.lock() {
                *slot = last;
            }
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_TRACKED_MICROS);
        if let Ok(mut histogram) = self.latency_micros.lock() {
            histogram.saturating_record(micros);
        }
    }

    /// Records a request refused because the endpoint was at its in-flight bound.
    pub(crate) fn record_overloaded(&self, limit: usize) {
        self.overloaded.fetch_add(1, Ordering::Relaxed);
        self.record(Duration::ZERO, Duration::ZERO, Some(&ServiceError::overloaded(limit)));
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
            },
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
