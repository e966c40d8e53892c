//! Where measurements go: HdrHistograms at microsecond resolution per endpoint and overall (the
//! response time from the planned send, the service time from the actual send), the dispatch lag,
//! one histogram per interval for percentiles over time, and every answer's verdict by kind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bench_results::{ErrorKind, Percentiles};
use hdrhistogram::Histogram;

use crate::target::check::Verdict;

/// The longest latency a histogram holds (longer ones are clamped to it): a minute.
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// A histogram of microseconds with `digits` significant digits.
pub fn histogram(digits: u8) -> Histogram<u64> {
    #[allow(clippy::expect_used)] // constant, valid bounds
    Histogram::new_with_bounds(1, MAX_LATENCY_US, digits).expect("valid bounds")
}

/// The percentiles `results.json` records of a histogram (all zero when it is empty).
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        mean: h.mean(),
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p95: h.value_at_quantile(0.95),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        p9999: h.value_at_quantile(0.9999),
        max: h.max(),
    }
}

/// The response time (from the plan) and the service time (from the send) of an answer at `done`.
fn times(planned: Instant, sent: Instant, done: Instant) -> (u64, u64) {
    (micros(done.saturating_duration_since(planned)), micros(done.saturating_duration_since(sent)))
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_LATENCY_US)
}

/// Answers of one kind of request (or of all).
#[derive(Debug, Clone)]
pub struct Tally {
    /// From the planned send to the answer.
    pub response: Histogram<u64>,
    /// From the actual send to the answer.
    pub service: Histogram<u64>,
    /// Successes.
    pub ok: u64,
    /// Errors the scenario asked for, by kind.
    pub expected: BTreeMap<ErrorKind, u64>,
    /// Every other error, by kind.
    pub unexpected: BTreeMap<ErrorKind, u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            response: histogram(3),
            service: histogram(3),
            ok: 0,
            expected: BTreeMap::new(),
            unexpected: BTreeMap::new(),
        }
    }
}

impl Tally {
    fn record(&mut self, response: u64, service: u64, verdict: &Verdict) {
        self.response.saturating_record(response);
        self.service.saturating_record(service);
        match verdict {
            Verdict::Ok => self.ok += 1,
            Verdict::Expected(kind) => *self.expected.entry(kind.clone()).or_default() += 1,
            Verdict::Unexpected(kind) => *self.unexpected.entry(kind.clone()).or_default() += 1,
        }
    }

    /// Answers counted, of every verdict.
    pub fn answered(&self) -> u64 {
        self.ok + self.expected.values().sum::<u64>() + self.unexpected.values().sum::<u64>()
    }

    /// Unexpected errors, all kinds.
    pub fn unexpected_count(&self) -> u64 {
        self.unexpected.values().sum()
    }

    /// Adds `other` to this (for repetitions, or endpoints into a total).
    pub fn merge(&mut self, other: &Tally) {
        // Same bounds and precision on both sides: adding cannot fail.
        let _ = self.response.add(&other.response);
        let _ = self.service.add(&other.service);
        self.ok += other.ok;
        for (kind, n) in &other.expected {
            *self.expected.entry(kind.clone()).or_default() += n;
        }
        for (kind, n) in &other.unexpected {
            *self.unexpected.entry(kind.clone()).or_default() += n;
        }
    }
}

/// One interval of the run.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Response times of the requests answered in it (2 significant digits: enough over time).
    pub response: Histogram<u64>,
    /// Requests answered in it.
    pub answered: u64,
    /// Of which unexpected errors.
    pub unexpected: u64,
}

impl Default for Interval {
    fn default() -> Self {
        Self { response: histogram(2), answered: 0, unexpected: 0 }
    }
}

/// Everything one measurement records.
#[derive(Debug)]
pub struct Recorder {
    /// When measuring started.
    pub start: Instant,
    /// The interval length.
    pub interval: Duration,
    /// By mix entry (then by flow step).
    pub endpoints: Vec<Tally>,
    /// By flow: each journey as one answer.
    pub flows: Vec<Tally>,
    /// From each planned send to the actual send.
    pub lag: Histogram<u64>,
    /// By interval of answer time.
    pub intervals: Vec<Interval>,
    /// By step of planned time (stepped load), with the step's length.
    pub steps: Option<(Duration, Vec<Tally>)>,
    /// Requests sent.
    pub sent: u64,
    /// Requests not sent because too many were in flight (open loop).
    pub dropped: u64,
}

impl Recorder {
    /// A recorder for `entries` mix entries (and flow steps) and `flows` flows, starting now.
    pub fn new(entries: usize, flows: usize, interval: Duration, step: Option<Duration>) -> Self {
        Self {
            start: Instant::now(),
            interval,
            endpoints: vec![Tally::default(); entries],
            flows: vec![Tally::default(); flows],
            lag: histogram(3),
            intervals: Vec::new(),
            steps: step.map(|length| (length, Vec::new())),
            sent: 0,
            dropped: 0,
        }
    }

    /// A request was sent at `sent`, planned for `planned`.
    pub fn sent(&mut self, planned: Instant, sent: Instant) {
        self.sent += 1;
        self.lag.saturating_record(micros(sent.saturating_duration_since(planned)));
    }

    /// A planned request was dropped.
    pub fn dropped(&mut self) {
        self.dropped += 1;
    }

    /// A request of mix entry `entry`, planned at `planned` and sent at `sent`, was answered at
    /// `done` with `verdict`.
    pub fn answered(
        &mut self,
        entry: usize,
        planned: Instant,
        sent: Instant,
        done: Instant,
        verdict: &Verdict,
    ) {
        let (response, service) = times(planned, sent, done);
        if let Some(tally) = self.endpoints.get_mut(entry) {
            tally.record(response, service, verdict);
        }
        let index =
            (done.saturating_duration_since(self.start).as_secs_f64() / self.interval.as_secs_f64()) as usize;
        if self.intervals.len() <= index {
            self.intervals.resize_with(index + 1, Interval::default);
        }
        let interval = &mut self.intervals[index];
        interval.response.saturating_record(response);
        interval.answered += 1;
        interval.unexpected += u64::from(matches!(verdict, Verdict::Unexpected(_)));
        if let Some((length, steps)) = &mut self.steps {
            let step =
                (planned.saturating_duration_since(self.start).as_secs_f64() / length.as_secs_f64()) as usize;
            if steps.len() <= step {
                steps.resize_with(step + 1, Tally::default);
            }
            steps[step].record(response, service, verdict);
        }
    }

    /// Flow `flow`, planned at `planned` and its first step sent at `sent`, ended at `done` with
    /// `verdict` (its first step's that was not a success, or a success). Its steps are recorded
    /// as answers of their own; this is the journey's figure, apart from the totals.
    pub fn flow_done(
        &mut self,
        flow: usize,
        planned: Instant,
        sent: Instant,
        done: Instant,
        verdict: &Verdict,
    ) {
        if let Some(tally) = self.flows.get_mut(flow) {
            let (response, service) = times(planned, sent, done);
            tally.record(response, service, verdict);
        }
    }

    /// Every endpoint together.
    pub fn overall(&self) -> Tally {
        let mut all = Tally::default();
        for tally in &self.endpoints {
            all.merge(tally);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_histogram() {
        let mut h = histogram(3);
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let p = percentiles(&h);
        assert_eq!((p.count, p.p50, p.max), (1000, 500, 1000));
        assert!((989..=991).contains(&p.p99));
        assert_eq!(percentiles(&histogram(3)), Percentiles::default());
    }

    #[test]
    fn merging_tallies_adds_counts_and_histograms() {
        let mut a = Tally::default();
        let mut b = Tally::default();
        for us in 1..=100 {
            a.record(us, us, &Verdict::Ok);
            b.record(us * 100, us, &Verdict::Unexpected("transport:timeout".into()));
        }
        b.record(5, 5, &Verdict::Expected("validation:luhn".into()));
        a.merge(&b);
        assert_eq!(a.answered(), 201);
        assert_eq!(a.response.len(), 201);
        assert_eq!(a.unexpected_count(), 100);
        assert_eq!(a.expected[&ErrorKind::from("validation:luhn")], 1);
        // Half the values are 1..=100 us and half 100..=10,000 us: the median sits between.
        let median = a.response.value_at_quantile(0.5);
        assert!((95..=105).contains(&median), "{median}");
        assert!(a.response.max() >= 9_990);
    }

    #[test]
    fn answers_land_in_the_interval_of_their_answer_and_the_step_of_their_plan() {
        let mut recorder = Recorder::new(1, 0, Duration::from_millis(100), Some(Duration::from_millis(100)));
        let start = recorder.start;
        let planned = start + Duration::from_millis(50);
        let done = start + Duration::from_millis(250);
        recorder.sent(planned, planned);
        recorder.answered(0, planned, planned, done, &Verdict::Ok);
        assert_eq!(recorder.intervals.len(), 3);
        assert_eq!(recorder.intervals[2].answered, 1);
        let (_, steps) = recorder.steps.as_ref().unwrap();
        assert_eq!(steps.len(), 1, "counted in the step it was planned in");
        assert!(recorder.overall().response.value_at_quantile(1.0) >= 199_000);
    }
}
