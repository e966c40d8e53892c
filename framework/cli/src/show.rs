//! What the commands print for people (`--json` prints the answers as they came). Every text a
//! service sent is escaped first: a name or an error with control characters in it cannot move
//! the terminal's cursor or change its colours.

use std::fmt::Write as _;

use natsrpc::ServiceStats;

use crate::discovery::Info;

/// Text from the network, control characters escaped and cut at `max` bytes.
fn safe(text: &str, max: usize) -> String {
    natsrpc::escape::escape(text, max).into_owned()
}

/// One line per service: its name, versions, instances, endpoints and description.
pub fn services(infos: &[Info]) -> String {
    let mut out = format!(
        "{:<24} {:<10} {:>9} {:>9}  {}\n",
        "NAME", "VERSION", "INSTANCES", "ENDPOINTS", "DESCRIPTION"
    );
    let mut names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
    names.dedup();
    for name in names {
        let of: Vec<&Info> = infos.iter().filter(|i| i.name == name).collect();
        let mut versions: Vec<&str> = of.iter().map(|i| i.version.as_str()).collect();
        versions.dedup();
        let _ = writeln!(
            out,
            "{:<24} {:<10} {:>9} {:>9}  {}",
            safe(name, 64),
            safe(&versions.join(","), 32),
            of.len(),
            of[0].endpoints.len(),
            safe(&of[0].description, 120)
        );
    }
    out
}

/// A service's endpoints, their subjects and whether they serve schemas.
pub fn info(infos: &[Info]) -> String {
    let first = &infos[0];
    let mut out = format!(
        "{} {}: {}\ninstances: {}\n\n{:<24} {:<40} {:<12} {}\n",
        safe(&first.name, 64),
        safe(&first.version, 32),
        safe(&first.description, 200),
        infos.iter().map(|i| safe(&i.id, 40)).collect::<Vec<_>>().join(", "),
        "ENDPOINT",
        "SUBJECT",
        "QUEUE",
        "SCHEMA"
    );
    for endpoint in &first.endpoints {
        let schema = match (endpoint.request_schema(), endpoint.response_schema()) {
            (Some(_), Some(_)) => "request, response",
            (Some(_), None) => "request",
            (None, Some(_)) => "response",
            (None, None) => "-",
        };
        let _ = writeln!(
            out,
            "{:<24} {:<40} {:<12} {schema}",
            safe(&endpoint.name, 64),
            safe(&endpoint.subject, 128),
            safe(&endpoint.queue_group, 32)
        );
    }
    out
}

/// Each instance's figures per endpoint: requests, errors, latency and validation's share.
pub fn stats(all: &[ServiceStats]) -> String {
    let mut out = String::new();
    for stats in all {
        let _ = writeln!(
            out,
            "{} {} (instance {}, since {})",
            safe(&stats.name, 64),
            safe(&stats.version, 32),
            safe(&stats.id, 40),
            safe(&stats.started, 40)
        );
        let _ = writeln!(
            out,
            "  {:<24} {:>10} {:>8} {:>9} {:>9} {:>9} {:>10}  LAST ERROR",
            "ENDPOINT", "REQUESTS", "ERRORS", "AVG ms", "p50 ms", "p99 ms", "VALIDATING"
        );
        for e in &stats.endpoints {
            let validating = if e.data.validates() {
                format!("{:.1}%", e.data.validation_share * 100.0)
            } else {
                "off".to_string()
            };
            let _ = writeln!(
                out,
                "  {:<24} {:>10} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>10}  {}",
                safe(&e.name, 64),
                e.num_requests,
                e.num_errors,
                e.average_processing_time as f64 / 1e6,
                e.data.latency_us.p50 as f64 / 1000.0,
                e.data.latency_us.p99 as f64 / 1000.0,
                validating,
                safe(&e.last_error, 120)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_services_text_cannot_drive_the_terminal() {
        let info = Info {
            name: "shop".into(),
            version: "1.0".into(),
            description: "red \u{1b}[31mtext\u{7}".into(),
            ..Info::default()
        };
        let listed = services(&[info.clone(), Info { id: "b".into(), ..info }]);
        assert!(!listed.contains('\u{1b}') && !listed.contains('\u{7}'), "{listed}");
        assert!(listed.lines().nth(1).unwrap().contains(" 2 "), "two instances: {listed}");
    }
}
