//! The load balancer in front of an HTTP stack's instances: HAProxy (Debian's `haproxy`, which
//! `scripts/start-test-services.sh` installs), configured by the runner for the stack.
//!
//! It listens on the stack's `url` and sends each request to the next instance in turn
//! (round-robin per request, over kept-alive connections to each). A connection an instance
//! refuses (one killed by an outage) is tried again on another: a refused connection carried no
//! request, so nothing runs twice. An answer that never comes is not retried, since the request may
//! have been applied (an order placed): the caller sees the error, as it would without the
//! balancer. Each instance is checked every 500 ms and left out from its first failed check until
//! it accepts connections again.

use std::path::Path;

use crate::BenchError;

pub use crate::config::stack::BALANCER;

/// The program run, found on the `PATH`.
pub const PROGRAM: &str = "haproxy";

/// HAProxy's configuration for a balancer on `listen` (`host:port`) in front of `instances`
/// (role, `host:port`).
pub fn config(listen: &str, instances: &[(String, String)]) -> String {
    let mut text = format!(
        "# Written by the benchmark runner for one measurement.
# No maxconn: HAProxy takes the most its file descriptor limit allows (two a connection), far above
# what a scenario keeps open (2,000 at most in flight), and a fixed one could exceed the limit.
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    # A refused connection carried no request: another instance may take it.
    retries 3
    retry-on conn-failure
    option redispatch 1

frontend stack
    bind {listen}
    default_backend instances

backend instances
    balance roundrobin
"
    );
    for (role, address) in instances {
        text.push_str(&format!("    server {role} {address} check inter 500ms fall 1 rise 1\n"));
    }
    text
}

/// Writes the configuration into `dir` as `{stack}-balancer.cfg` (beside the stack's logs, for
/// whoever reads them) and answers the arguments that run it in the foreground on it.
pub fn write(
    dir: &Path,
    stack: &str,
    listen: &str,
    instances: &[(String, String)],
) -> Result<Vec<String>, BenchError> {
    let path = dir.join(format!("{stack}-{BALANCER}.cfg"));
    std::fs::write(&path, config(listen, instances)).map_err(BenchError::io(&path))?;
    Ok(vec!["-db".to_string(), "-f".to_string(), path.display().to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_is_a_checked_server_and_refused_connections_go_elsewhere() {
        let instances =
            [("api-1".to_string(), "127.0.0.1:9001".into()), ("api-2".into(), "127.0.0.1:9002".into())];
        let text = config("127.0.0.1:8080", &instances);
        assert!(text.contains("bind 127.0.0.1:8080\n"));
        assert!(text.contains("server api-1 127.0.0.1:9001 check"));
        assert!(text.contains("server api-2 127.0.0.1:9002 check"));
        assert!(text.contains("retry-on conn-failure\n"), "only what carried no request is retried");
        assert!(
            !text.contains("empty-response"),
            "an answer lost is never retried: it may have been applied"
        );
    }
}
