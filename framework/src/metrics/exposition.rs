//! Prometheus's text format (version 0.0.4): a `# HELP` and `# TYPE` line per family, then one
//! line per sample, label values escaped as the format says.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::events::ListenerStats;
use crate::server::stats::{CodeCount, LATENCY_BUCKETS_MICROS, MetricsSnapshot};

/// One endpoint's figures, summed over the instances of its service in the process.
#[derive(Debug, Default)]
pub(super) struct Endpoint {
    figures: MetricsSnapshot,
    in_flight: usize,
}

impl Endpoint {
    pub(super) fn add(&mut self, more: MetricsSnapshot, in_flight: usize) {
        let sum = &mut self.figures;
        sum.requests += more.requests;
        sum.count += more.count;
        sum.processing_nanos += more.processing_nanos;
        sum.validation_nanos += more.validation_nanos;
        for (bucket, added) in sum.buckets.iter_mut().zip(more.buckets) {
            *bucket += added;
        }
        for error in more.errors {
            match sum.errors.iter_mut().find(|e| e.status == error.status && e.code == error.code) {
                Some(known) => known.count += error.count,
                None => sum.errors.push(error),
            }
        }
        self.in_flight += in_flight;
    }
}

type Endpoints = BTreeMap<(String, String), Endpoint>;

pub(super) fn write(
    versions: &BTreeSet<(String, String)>,
    endpoints: &Endpoints,
    listeners: &BTreeMap<(String, &'static str), ListenerStats>,
    timers: &BTreeMap<(String, String), crate::TimerStats>,
) -> String {
    let mut out = Text(String::with_capacity(1024 + endpoints.len() * 2048));
    out.family("natsrpc_service_info", "gauge", "The services in this process, by version (always 1).");
    for (service, version) in versions {
        out.sample("natsrpc_service_info", &[("service", service), ("version", version)], 1);
    }

    out.family("natsrpc_requests_total", "counter", "Requests answered, refused ones included.");
    for (key, e) in endpoints {
        out.sample("natsrpc_requests_total", &base(key), e.figures.requests);
    }

    out.family("natsrpc_request_errors_total", "counter", "Error replies, by status and code.");
    for (key, e) in endpoints {
        let mut errors: Vec<&CodeCount> = e.figures.errors.iter().collect();
        errors.sort_by(|a, b| (a.status, &a.code).cmp(&(b.status, &b.code)));
        for error in errors {
            let status = error.status.to_string();
            let mut with = base(key);
            with.extend([("status", status.as_str()), ("code", error.code.as_str())]);
            out.sample("natsrpc_request_errors_total", &with, error.count);
        }
    }

    let histogram = "natsrpc_request_duration_seconds";
    out.family(histogram, "histogram", "Time from a request's arrival to its reply.");
    for (key, e) in endpoints {
        for (bound, count) in LATENCY_BUCKETS_MICROS.iter().zip(e.figures.buckets) {
            let le = seconds(bound * 1_000);
            let mut with = base(key);
            with.push(("le", &le));
            out.sample(&format!("{histogram}_bucket"), &with, count);
        }
        let mut with = base(key);
        with.push(("le", "+Inf"));
        out.sample(&format!("{histogram}_bucket"), &with, e.figures.count);
        out.sample(&format!("{histogram}_sum"), &base(key), seconds(e.figures.processing_nanos));
        out.sample(&format!("{histogram}_count"), &base(key), e.figures.count);
    }

    out.family("natsrpc_requests_in_flight", "gauge", "Handlers running now.");
    for (key, e) in endpoints {
        out.sample("natsrpc_requests_in_flight", &base(key), e.in_flight);
    }

    out.family("natsrpc_validation_seconds_total", "counter", "Time spent validating requests.");
    for (key, e) in endpoints {
        out.sample("natsrpc_validation_seconds_total", &base(key), seconds(e.figures.validation_nanos));
    }

    if !listeners.is_empty() {
        out.family("natsrpc_events_received_total", "counter", "Events that reached a listener.");
        for ((service, subject), stats) in listeners {
            let with = [("service", service.as_str()), ("subject", *subject)];
            out.sample("natsrpc_events_received_total", &with, stats.received);
        }
        out.family("natsrpc_events_total", "counter", "Events a listener has done with, by outcome.");
        for ((service, subject), stats) in listeners {
            for (outcome, count) in
                [("handled", stats.handled), ("failed", stats.failed), ("invalid", stats.invalid)]
            {
                let with = [("service", service.as_str()), ("subject", *subject), ("outcome", outcome)];
                out.sample("natsrpc_events_total", &with, count);
            }
        }
    }
    if !timers.is_empty() {
        out.family(
            "natsrpc_timer_runs_total",
            "counter",
            "Periods of a timer, by what this process did with them.",
        );
        for ((service, timer), stats) in timers {
            for (outcome, count) in [("ok", stats.runs), ("failed", stats.failed), ("skipped", stats.skipped)]
            {
                let with = [("service", service.as_str()), ("timer", timer.as_str()), ("outcome", outcome)];
                out.sample("natsrpc_timer_runs_total", &with, count);
            }
        }
    }
    out.0
}

/// An endpoint's labels.
fn base((service, endpoint): &(String, String)) -> Vec<(&'static str, &str)> {
    vec![("service", service.as_str()), ("endpoint", endpoint.as_str())]
}

/// Nanoseconds as seconds, in the shortest decimal that reads back the same.
fn seconds(nanos: u64) -> String {
    (nanos as f64 / 1e9).to_string()
}

struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        name: &str,
        labels: &[(K, V)],
        value: impl std::fmt::Display,
    ) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(label.as_ref());
                self.0.push_str("=\"");
                escape_into(&mut self.0, value.as_ref());
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// A label value as the format wants it: backslash, double quote and line feed escaped. Every
/// other character may stand as it is (the format is UTF-8).
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_as_the_format_says() {
        let mut out = Text(String::new());
        out.sample("m", &[("a", "x\\y\"z\nw")], 1);
        assert_eq!(out.0, "m{a=\"x\\\\y\\\"z\\nw\"} 1\n");
    }

    #[test]
    fn seconds_read_back_as_the_bounds_were_meant() {
        assert_eq!(seconds(100_000), "0.0001");
        assert_eq!(seconds(2_500_000_000), "2.5");
        assert_eq!(seconds(10_000_000_000), "10");
    }
}
