//! The runner end to end: `bench` on a small config against the NATS stack (on a private
//! nats-server) writes a valid run folder, and a missed expectation makes it exit 1 and say which.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use benchmarks::results::RunResults;
use natsrpc::testing::NatsServer;
use support::bin_dir;

mod support;

fn config(nats_url: &str, p50_limit_ms: f64) -> String {
    format!(
        r#"
run:
  stacks: [nats]
  scenarios: [tiny]
  warmup: 300ms
  repetitions: 2
scenarios:
  tiny:
    description: a few orders, some invalid, with declines
    load: {{ model: open, phases: [{{ arrival_rate: 150, duration: 1500ms }}] }}
    mix:
      - {{ endpoint: ecommerce.create_order, size: small, weight: 3 }}
      - {{ endpoint: analytics.ingest_event, weight: 1 }}
    invalid_share: 0.2
    faults: {{ payment_decline_rate: 0.2 }}
    performance_expectations:
      p50_ms: {p50_limit_ms}
      max_unexpected_error_rate: 0
stacks:
  nats:
    description: natsrpc services on NATS
    transport: nats
    url: {nats_url}
    brokers: [nats]
    processes:
      - {{ name: services, command: [nats-services], env: {{ STORE: memory }} }}
"#
    )
}

fn bench(config_text: &str, reports: &std::path::Path) -> std::process::ExitStatus {
    let config = reports.join("config.yaml");
    std::fs::create_dir_all(reports).unwrap();
    std::fs::write(&config, config_text).unwrap();
    // The runner starts stacks from the binaries beside it: make sure they are built.
    let runner = bin_dir().join("bench");
    assert_eq!(runner, std::path::PathBuf::from(env!("CARGO_BIN_EXE_bench")));
    Command::new(runner)
        .args(["--config", config.to_str().unwrap(), "--reports", reports.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .env_remove("PROFILE")
        .env_remove("DURATION")
        .env_remove("SCENARIOS")
        .env_remove("STACKS")
        .status()
        .unwrap()
}

#[test]
fn a_run_writes_results_a_reader_can_trust() {
    let server = NatsServer::start().unwrap();
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    let status = bench(&config(&server.url(), 1000.0), &reports);
    assert!(status.success(), "{status}");

    let run = reports.join("latest");
    let results = RunResults::read(&run.join("results.json")).unwrap();
    assert_eq!(results.schema, 1);
    assert_eq!(results.environment.cores, std::thread::available_parallelism().unwrap().get());
    assert!(!results.environment.nats_server.is_empty());
    let scenario = &results.scenarios[0];
    assert_eq!(scenario.name, "tiny");
    let stack = &scenario.stacks[0];
    assert_eq!(stack.repetitions.len(), 2);
    for m in &stack.repetitions {
        assert_eq!(m.sent, 225, "150 per second for 1.5 s, every one sent");
        assert_eq!(m.answered, m.sent, "and answered");
        assert!(m.unexpected_errors.is_empty(), "{:?}", m.unexpected_errors);
        let validation: u64 =
            m.expected_errors.iter().filter(|(k, _)| k.starts_with("validation:")).map(|(_, n)| n).sum();
        assert!(validation > 10, "invalid requests came back as validation errors: {:?}", m.expected_errors);
        assert!(m.expected_errors.contains_key("fault:payment_declined"), "{:?}", m.expected_errors);
        assert!(m.latency_us.p50 > 0 && m.latency_us.p50 <= m.latency_us.p99);
        assert_eq!(m.target_rps.map(|r| r.round()), Some(150.0));
        assert!(!m.intervals.is_empty());
        assert_eq!(m.endpoints.len(), 2);
        assert!(m.cpu.stack_s > 0.0 && m.cpu.requests_per_cpu_second > 0.0, "{:?}", m.cpu);
        assert!(m.resources.iter().any(|u| u.name == "nats-server"));
        assert!(m.validation.iter().any(|v| v.endpoint == "ecommerce.create_order" && v.validation_us > 0.0));
        let log = std::fs::read_to_string(run.join(&m.interval_log)).unwrap();
        assert!(log.lines().any(|l| l.starts_with("Tag=nats,")), "interval histograms in the log");
    }
    assert_eq!(stack.summary.repetitions, 2);
    assert!(results.expectations.iter().all(|e| e.held));
    for csv in ["summary.csv", "endpoints.csv", "intervals.csv", "steps.csv"] {
        assert!(run.join(csv).exists(), "{csv}");
    }
    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 3, "a header and a row per repetition");
    let _ = std::fs::remove_dir_all(&reports);
}

#[test]
fn a_missed_expectation_fails_the_run_and_says_which() {
    let server = NatsServer::start().unwrap();
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    let status = bench(&config(&server.url(), 0.0001), &reports);
    assert_eq!(status.code(), Some(1));
    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let missed: Vec<_> = results.expectations.iter().filter(|e| !e.held).collect();
    assert_eq!(missed.len(), 1);
    assert_eq!((missed[0].metric.as_str(), missed[0].stack.as_str()), ("p50_ms", "nats"));
    let _ = std::fs::remove_dir_all(&reports);
}

#[test]
fn a_refused_config_runs_nothing() {
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    let status =
        bench(&config("nats://127.0.0.1:4222", 1.0).replace("repetitions: 2", "repetitons: 2"), &reports);
    assert_eq!(status.code(), Some(2));
    assert!(!reports.join("latest").exists());
    let _ = std::fs::remove_dir_all(&reports);
}
