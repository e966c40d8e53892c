//! What a soak shows: whether latency drifts from the first intervals to the last at a steady
//! offered rate, and whether any process's memory keeps growing (the slope of a least-squares
//! line through its resident memory, in MiB per minute), with a verdict.
//!
//! A soak's mix keeps no new state (no orders, no events kept), so memory that grows is held by
//! something that should have let go, not data the services were asked to keep.

use bench_results::{Drift, IntervalResult, MemoryTrend, MemoryVerdict, Usage};

/// A slope below this many MiB per minute is steady, whatever the process's size.
const STEADY_MIB_PER_MIN: f64 = 1.0;
/// Nor is growth below this share of the process's memory per minute a leak.
const STEADY_SHARE_PER_MIN: f64 = 0.01;
/// A soak shorter than this says little about leaks: allocators and caches still settle.
const CONCLUSIVE_S: f64 = 120.0;

/// The drift of a measurement's intervals.
pub fn drift(intervals: &[IntervalResult]) -> Drift {
    let busy: Vec<&IntervalResult> = intervals.iter().filter(|i| i.answered > 0).collect();
    if busy.is_empty() {
        return Drift::default();
    }
    let n = (busy.len() / 10).max(1);
    let median = |part: &[&IntervalResult], pick: fn(&IntervalResult) -> u64| {
        let mut values: Vec<u64> = part.iter().map(|i| pick(i)).collect();
        values.sort_unstable();
        values[values.len() / 2] as f64
    };
    let (first, last) = (&busy[..n], &busy[busy.len() - n..]);
    Drift {
        intervals: n,
        first_p50_us: median(first, |i| i.p50_us),
        last_p50_us: median(last, |i| i.p50_us),
        first_p99_us: median(first, |i| i.p99_us),
        last_p99_us: median(last, |i| i.p99_us),
    }
}

/// One group's memory trend, from its samples.
pub fn memory_trend(usage: &Usage) -> Option<MemoryTrend> {
    let points: Vec<(f64, f64)> = usage.samples.iter().map(|s| (s.t_s, s.rss_mib)).collect();
    let (first, last) = (points.first()?, points.last()?);
    let slope = slope_per_min(&points);
    let late = slope_per_min(&points[points.len() / 2..]);
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let threshold = STEADY_MIB_PER_MIN.max(STEADY_SHARE_PER_MIN * mean);
    let growing = slope > threshold && late > threshold / 2.0;
    Some(MemoryTrend {
        name: usage.name.clone(),
        start_mib: first.1,
        end_mib: last.1,
        slope_mib_per_min: slope,
        late_slope_mib_per_min: late,
        verdict: if growing { MemoryVerdict::Growing } else { MemoryVerdict::Steady },
        conclusive: last.0 - first.0 >= CONCLUSIVE_S,
    })
}

/// The least-squares slope of `(seconds, MiB)` points, MiB per minute (0 with fewer than 2).
fn slope_per_min(points: &[(f64, f64)]) -> f64 {
    if points.len() < 2 {
        return 0.0;
    }
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx * 60.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_results::Sample;

    fn usage(rss: impl Fn(f64) -> f64, seconds: u32) -> Usage {
        let samples = (0..=seconds)
            .map(|t| Sample { t_s: f64::from(t), cpu_s: 0.0, rss_mib: rss(f64::from(t)) })
            .collect();
        Usage { name: "stack/services".into(), cpu_s: 0.0, rss_max_mib: 0.0, samples }
    }

    #[test]
    fn memory_that_keeps_growing_is_told_from_memory_that_levels_off() {
        // 2 MiB a minute, steadily, over ten minutes.
        let leak = memory_trend(&usage(|t| 40.0 + t / 30.0, 600)).unwrap();
        assert!((leak.slope_mib_per_min - 2.0).abs() < 1e-9, "{}", leak.slope_mib_per_min);
        assert_eq!(leak.verdict, MemoryVerdict::Growing);
        assert!(leak.conclusive);
        // Grows in the first minute (caches, allocator arenas), then flat.
        let warm = memory_trend(&usage(|t| 40.0 + (t.min(60.0) / 6.0), 600)).unwrap();
        assert_eq!(warm.verdict, MemoryVerdict::Steady, "{warm:?}");
        // Noise around a level.
        let noisy =
            memory_trend(&usage(|t| 40.0 + if (t as u32).is_multiple_of(2) { 0.5 } else { -0.5 }, 30))
                .unwrap();
        assert_eq!(noisy.verdict, MemoryVerdict::Steady);
        assert!(!noisy.conclusive, "30 seconds say little");
    }

    #[test]
    fn drift_compares_the_first_tenth_with_the_last() {
        let intervals: Vec<IntervalResult> = (0..20u64)
            .map(|i| IntervalResult {
                t_s: i as f64,
                answered: 100,
                rps: 100.0,
                unexpected: 0,
                p50_us: 1000 + i * 100,
                p99_us: 5000 + i * 500,
                max_us: 9000,
            })
            .collect();
        let drift = drift(&intervals);
        assert_eq!(drift.intervals, 2);
        assert_eq!((drift.first_p50_us, drift.last_p50_us), (1100.0, 2900.0));
        assert!((drift.p99_ratio() - 14_500.0 / 5_500.0).abs() < 1e-9);
    }
}
