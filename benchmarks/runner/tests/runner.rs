//! The runner end to end: `bench` on a small config against the NATS stack (on a private
//! nats-server) writes a valid run folder, and a missed expectation makes it exit 1 and say which.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use bench_results::{ErrorKind, RunResults};
use natsrpc::testing::NatsServer;
use support::bin_dir;

mod support;

/// The services on NATS, in memory, as a config's `stacks`.
fn nats_stack(nats_url: &str) -> String {
    format!(
        r#"stacks:
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
{}"#,
        nats_stack(nats_url)
    )
}

fn bench(config_text: &str, reports: &std::path::Path) -> std::process::ExitStatus {
    bench_output(config_text, reports, &[]).status
}

/// `bench` on `config_text` with `env` on top of this process's environment, with what it printed.
fn bench_output(config_text: &str, reports: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let config = reports.join("config.yaml");
    std::fs::create_dir_all(reports).unwrap();
    std::fs::write(&config, config_text).unwrap();
    // The runner starts stacks from the binaries beside it: make sure they are built.
    assert_eq!(bin_dir().join("bench"), std::path::PathBuf::from(env!("CARGO_BIN_EXE_bench")));
    support::bench(&config, reports).envs(env.iter().copied()).output().unwrap()
}

#[test]
fn a_run_writes_results_a_reader_can_trust() {
    let server = NatsServer::start().unwrap();
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    // Placed on CPU 0, which every machine has: the generator, and the stack's one process.
    let placed = config(&server.url(), 1000.0)
        .replace("  repetitions: 2\n", "  repetitions: 2\n  generator_cpus: \"0\"\n")
        .replace("command: [nats-services],", "command: [nats-services], cpus: \"0\",");
    let status = bench(&placed, &reports);
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
        let validation: u64 = m
            .expected_errors
            .iter()
            .filter(|(k, _)| matches!(k, ErrorKind::Validation(_)))
            .map(|(_, n)| n)
            .sum();
        assert!(validation > 10, "invalid requests came back as validation errors: {:?}", m.expected_errors);
        assert!(
            m.expected_errors.contains_key(&ErrorKind::from("fault:payment_declined")),
            "{:?}",
            m.expected_errors
        );
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
    assert_eq!(results.settings.generator_cpus.as_deref(), Some("0"));
    assert_eq!(stack.cpus, [("services".to_string(), "0".to_string())], "the placement is in the results");
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
fn a_limit_on_one_kind_of_request_with_abort_on_fail_ends_the_run_there() {
    let server = NatsServer::start().unwrap();
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    let text = format!(
        r#"
run: {{ stacks: [nats], scenarios: [first, second], warmup: 0s, repetitions: 2 }}
scenarios:
  first:
    load: {{ model: closed, users: 2, duration: 1s }}
    mix:
      - {{ endpoint: ecommerce.create_order, size: small }}
      - {{ endpoint: analytics.ingest_event }}
    performance_expectations:
      max_error_rates: {{ transport: 0 }}
      endpoints:
        ecommerce.create_order/small: {{ p90_ms: 10000 }}
        analytics.ingest_event: {{ p99_ms: 0.0001 }}
      abort_on_fail: true
  second:
    load: {{ model: closed, users: 1, duration: 1s }}
    mix: [{{ endpoint: ecommerce.restock }}]
{}"#,
        nats_stack(&server.url())
    );
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(reports.join("config.yaml"), &text).unwrap();
    let output =
        support::bench(&reports.join("config.yaml"), &reports).args(["--format", "junit"]).output().unwrap();
    let (xml, said) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("aborted: first on nats: p99_ms of analytics.ingest_event"), "{said}");
    // For a CI system: the verdict alone on standard output, progress on standard error.
    assert!(xml.starts_with("<?xml") && xml.trim_end().ends_with("</testsuites>"), "{xml}");
    assert!(xml.contains("name=\"p99_ms of analytics.ingest_event\">\n      <failure"), "{xml}");
    let written = std::fs::read_to_string(reports.join("latest/junit.xml")).unwrap();
    assert_eq!(written, xml, "the run folder has it too");

    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let names: Vec<&str> = results.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["first"], "nothing ran after the miss");
    assert_eq!(results.scenarios[0].stacks[0].repetitions.len(), 1, "nor its second repetition");
    let checks: Vec<(&str, bool)> =
        results.expectations.iter().map(|e| (e.metric.as_str(), e.held)).collect();
    for expected in [
        ("max_error_rates[transport]", true),
        ("p90_ms of ecommerce.create_order/small", true),
        ("p99_ms of analytics.ingest_event", false),
        ("p99_ms of analytics.ingest_event (repetition 1: aborted the run)", false),
    ] {
        assert!(checks.contains(&expected), "{expected:?} in {checks:?}");
    }
    assert!(results.warnings.iter().any(|w| w.contains("aborted after first on nats, repetition 1")));
    let _ = std::fs::remove_dir_all(&reports);
}

/// A run of one short closed-loop scenario of small orders on `stack`, `invalid_share` of them
/// invalid, as a config's `run` and `scenarios`.
fn orders_on(stack: &str, invalid_share: f64) -> String {
    format!(
        r#"
run:
  stacks: [{stack}]
  scenarios: [orders]
  warmup: 0s
  repetitions: 1
scenarios:
  orders:
    description: orders
    load: {{ model: closed, users: 2, duration: 600ms }}
    mix: [{{ endpoint: ecommerce.create_order, size: small, weight: 1 }}]
    invalid_share: {invalid_share}
"#
    )
}

/// A validation-off control must be the control build, and be there: the services as normally
/// built (which validate) are refused in its place, and so is a missing binary; a scenario with
/// invalid requests leaves the control out instead of counting what it accepts as errors.
#[test]
fn a_validation_control_runs_only_its_own_build_and_only_valid_requests() {
    let server = NatsServer::start().unwrap();
    let control = |command: &str, invalid_share: f64| {
        format!(
            r#"{}{}  bare:
    description: the services without validation
    transport: nats
    url: {url}
    unvalidated_control_of: nats
    processes:
      - {{ name: services, command: [{command}], env: {{ STORE: memory }} }}
"#,
            orders_on("bare", invalid_share),
            nats_stack(&server.url()),
            url = server.url()
        )
    };
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    let validating = bench_output(&control("nats-services", 0.0), &reports, &[]);
    let said = String::from_utf8_lossy(&validating.stderr).to_string()
        + &String::from_utf8_lossy(&validating.stdout);
    assert_eq!(validating.status.code(), Some(2), "{said}");
    assert!(said.contains("bare is a validation-off control, but its services validate"), "{said}");

    let missing = bench_output(&control("unvalidated/no-such-binary", 0.0), &reports, &[]);
    let said = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{said}");
    assert!(said.contains("missing binaries") && said.contains("bare: "), "{said}");

    let with_invalid = bench_output(&control("nats-services", 0.5), &reports, &[]);
    let said = String::from_utf8_lossy(&with_invalid.stderr);
    assert!(with_invalid.status.success(), "{said}");
    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    assert!(results.scenarios[0].stacks.is_empty(), "the control sat out the scenario with invalid requests");
    let _ = std::fs::remove_dir_all(&reports);
}

/// A NATS stack on a server that wants a password: the YAML names the environment variable that
/// holds it (`${...}`), the stack's processes and the runner's own connections use it, and it is
/// written nowhere in the run's folder; unset, the run is refused naming the variable.
#[test]
fn a_stack_on_a_secured_nats_is_measured_with_a_password_from_the_environment() {
    let secret = "s3cr3t-in-the-env";
    let server = NatsServer::start_with_config(&format!(
        "authorization {{ users = [ {{ user: bench, password: \"{secret}\" }} ] }}"
    ))
    .unwrap();
    let text = format!(
        r#"{}stacks:
  secured:
    description: the services on a NATS that wants a password
    transport: nats
    url: {}
    nats: {{ NATS_USER: bench, NATS_PASSWORD: "${{NATSRPC_TEST_NATS_PASSWORD}}" }}
    processes:
      - {{ name: services, command: [nats-services], env: {{ STORE: memory }} }}
"#,
        orders_on("secured", 0.0),
        server.url()
    );
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    let run = bench_output(&text, &reports, &[("NATSRPC_TEST_NATS_PASSWORD", secret)]);
    let said = String::from_utf8_lossy(&run.stderr).to_string() + &String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{said}");
    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let measured = &results.scenarios[0].stacks[0].repetitions[0];
    assert!(measured.ok > 0 && measured.unexpected_errors.is_empty(), "{:?}", measured.unexpected_errors);
    assert!(!said.contains(secret));
    for file in walk(&reports) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(secret), "{} holds the password", file.display());
    }

    let unset = bench_output(&text, &reports, &[]);
    let said = String::from_utf8_lossy(&unset.stderr);
    assert_eq!(unset.status.code(), Some(2), "{said}");
    assert!(
        said.contains("stacks.secured.nats.NATS_PASSWORD: ${NATSRPC_TEST_NATS_PASSWORD} is not set"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&reports);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            files.extend(walk(&path));
        } else if path.is_file() {
            files.push(path);
        }
    }
    files
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

/// `bench --help` says what it does, with its commands, examples and exit codes; `list` names
/// what a configuration has; `validate` checks one (and the run its flags select) without running
/// anything; a wrong argument or flag value exits 2 naming it.
#[test]
fn the_command_line_helps_lists_and_validates() {
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    std::fs::create_dir_all(&reports).unwrap();
    let file = reports.join("config.yaml");
    std::fs::write(&file, config("nats://127.0.0.1:4222", 1.0)).unwrap();
    let bench = |args: &[&str]| {
        let output = Command::new(bin_dir().join("bench")).args(args).env_remove("PROFILE").output().unwrap();
        let said =
            String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), said)
    };
    let (code, help) = bench(&["--help"]);
    assert_eq!(code, Some(0), "{help}");
    for says in [
        "run",
        "list",
        "validate",
        "selfcheck",
        "--stacks",
        "--scenarios",
        "--duration",
        "--out",
        "Examples:",
        "Exit codes:",
    ] {
        assert!(help.contains(says), "--help does not mention {says}: {help}");
    }
    let (code, help) = bench(&["selfcheck", "--help"]);
    assert!(code == Some(0) && help.contains("--rounds"), "{help}");
    let stacks = Command::new(env!("CARGO_BIN_EXE_stacks")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&stacks.stdout);
    assert!(stacks.status.success() && help.contains("up") && help.contains("down"), "{help}");

    let path = file.to_string_lossy().to_string();
    let (code, listed) = bench(&["list", "--config", &path]);
    assert_eq!(code, Some(0), "{listed}");
    assert!(
        listed.contains("nats ") && listed.contains("tiny ") && listed.contains("a few orders"),
        "{listed}"
    );
    let (code, valid) = bench(&["validate", "--config", &path, "--stacks", "nats", "--repetitions", "1"]);
    assert_eq!(code, Some(0), "{valid}");
    assert!(valid.contains("valid; the run: 1 scenario(s) x 1 stack(s) x 1 repetition(s)"), "{valid}");
    assert!(!reports.join("latest").exists(), "validate runs nothing");

    for (args, says) in [
        (vec!["validate", "--config", path.as_str(), "--stacks", "nope"], "nope"),
        (vec!["run", "--config", path.as_str(), "--duration", "fast"], "fast"),
        (vec!["--bogus"], "--bogus"),
        (vec!["selfcheck", "--rounds", "0"], "--rounds"),
    ] {
        let (code, said) = bench(&args);
        assert_eq!(code, Some(2), "{args:?}: {said}");
        assert!(said.contains(says), "{args:?} does not name {says}: {said}");
    }
    let _ = std::fs::remove_dir_all(&reports);
}

fn services_config(nats_url: &str) -> String {
    format!(
        r#"
run:
  stacks: [nats]
  scenarios: [contention, convergence, soak]
  warmup: 300ms
  repetitions: 1
scenarios:
  contention:
    description: users fighting over two items whose restocks cannot keep up
    load: {{ model: closed, users: 16, duration: 1500ms }}
    mix:
      - {{ endpoint: ecommerce.reserve_inventory, weight: 4 }}
      - {{ endpoint: ecommerce.restock, weight: 1 }}
    contention: {{ hot_skus: 2, initial_stock: 50, max_restock: 5 }}
    performance_expectations: {{ max_unexpected_error_rate: 0 }}
  convergence:
    description: orders followed into analytics
    load: {{ model: open, phases: [{{ arrival_rate: 100, duration: 1500ms }}] }}
    mix:
      - {{ endpoint: ecommerce.create_order, size: small, weight: 1 }}
    convergence: {{ settle: 5s }}
  soak:
    description: half the saturation rate for a few seconds
    load: {{ model: soak, fraction: 0.5, probe_users: 8, probe: 1s, duration: 3s }}
    mix:
      - {{ endpoint: ecommerce.restock, weight: 1 }}
      - {{ endpoint: analytics.top_n, weight: 1 }}
{}"#,
        nats_stack(nats_url)
    )
}

#[test]
fn contention_convergence_and_soak_check_what_must_hold_beyond_speed() {
    let server = NatsServer::start().unwrap();
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    let status = bench(&services_config(&server.url()), &reports);
    assert!(status.success(), "{status}");
    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let only = |name: &str| {
        let scenario = results.scenarios.iter().find(|s| s.name == name).unwrap();
        scenario.stacks[0].repetitions[0].clone()
    };

    // Contention: the restocks cannot keep up, so some reservations find no stock; every unit
    // is accounted for.
    let m = only("contention");
    let books = m.contention.as_ref().expect("the stock books");
    assert!(books.reservations > 100, "{books:?}");
    assert!(books.conflicts > 0 && books.conflicts < books.reservations, "{books:?}");
    assert!(books.balanced && books.oversold_units == 0 && books.vanished_units == 0, "{books:?}");
    assert_eq!(books.items.len(), 2);
    for item in &books.items {
        let left = item.remaining.unwrap();
        assert_eq!(item.added_unknown + item.taken_unknown, 0, "every request answered");
        assert_eq!(item.initial + item.added, item.taken + left, "{item:?}");
    }
    assert!(
        m.unexpected_errors.is_empty(),
        "refusals for want of stock are expected: {:?}",
        m.unexpected_errors
    );
    assert!(
        m.expected_errors.contains_key(&ErrorKind::from("fault:out_of_stock")),
        "{:?}",
        m.expected_errors
    );

    // Convergence: every order acknowledged shows in analytics, once.
    let m = only("convergence");
    let followed = m.convergence.as_ref().expect("orders followed");
    assert_eq!(followed.orders, 150, "100 a second for 1.5 s, all acknowledged: {followed:?}");
    assert_eq!(followed.counted_once, followed.orders, "{followed:?}");
    assert!(followed.exactly_once());
    assert_eq!(followed.lag_us.count, 150);
    assert!(followed.lag_us.p50 > 0 && followed.lag_us.p50 <= followed.lag_us.p99, "{followed:?}");

    // Soak: a rate measured, half of it offered, memory followed per process and broker.
    let m = only("soak");
    let soak = m.soak.as_ref().expect("soak figures");
    assert!(soak.saturation_rps > 0.0);
    assert!((soak.offered_rps - soak.saturation_rps / 2.0).abs() < 1.0, "{soak:?}");
    assert_eq!(m.target_rps.map(f64::round), Some(soak.offered_rps.round()));
    let names: Vec<&str> = soak.memory.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["stack/services", "nats-server"]);
    assert!(soak.memory.iter().all(|t| t.start_mib > 0.0 && !t.conclusive), "{soak:?}");
    assert!(soak.drift.intervals >= 1 && soak.drift.first_p99_us > 0.0, "{soak:?}");

    let invariants: Vec<&str> = results.expectations.iter().map(|e| e.metric.as_str()).collect();
    for metric in ["oversold_units", "vanished_units", "orders_lost", "orders_counted_twice"] {
        assert!(invariants.contains(&metric), "{metric} checked: {invariants:?}");
    }
    assert!(results.expectations.iter().all(|e| e.held), "{:?}", results.expectations);
    let _ = std::fs::remove_dir_all(&reports);
}

/// A request type of a stray `ecommerce`: any natsrpc service of that name on the server.
#[derive(serde::Serialize, serde::Deserialize, validator::Validate)]
struct Stray {}
natsrpc::request!(Stray => (), service = "ecommerce", endpoint = "stray");

async fn stray(_: Stray) -> Result<(), natsrpc::ServiceError> {
    Ok(())
}

fn spec(transport: bench_runner::config::Transport, url: String) -> bench_runner::config::StackSpec {
    bench_runner::config::StackSpec {
        processes: vec![bench_runner::config::ProcessSpec::new("services", vec!["nats-services".into()])],
        ..bench_runner::config::StackSpec::new(transport, url)
    }
}

/// A service left running on the NATS server would join the measured stack's queue group and take
/// part of its load: the run refuses to start, names it, and measures nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_left_running_on_the_stacks_subjects_refuses_the_run() {
    use bench_runner::config::Transport;
    use bench_runner::system::stacks::occupant;

    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let nats_spec = spec(Transport::Nats, server.url());
    assert_eq!(occupant(&nats_spec).await, None, "nothing answers yet");

    let left_running =
        natsrpc::Service::builder("ecommerce", "9.9.9").endpoint(stray).start(&nats).await.unwrap();
    let found = occupant(&nats_spec).await.expect("the stray is found");
    assert!(found.contains("ecommerce 9.9.9 (id "), "{found}");

    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    let config = config(&server.url(), 1000.0);
    let ran = {
        let reports = reports.clone();
        tokio::task::spawn_blocking(move || bench(&config, &reports)).await.unwrap()
    };
    assert_eq!(ran.code(), Some(2), "refused");
    assert!(!reports.join("latest").exists(), "nothing measured");
    let _ = std::fs::remove_dir_all(&reports);

    left_running.stop(std::time::Duration::from_secs(2)).await.unwrap();
    assert_eq!(occupant(&nats_spec).await, None, "free again once it stopped");

    // A stray that is no natsrpc service says what it likes in its PING answer: the refusal quotes
    // it escaped and cut, never raw into the terminal.
    let hostile = serde_json::json!({
        "name": "\u{1b}[2Jwiped\r\nforged line",
        "version": "9".repeat(10_000),
        "id": "\u{0}",
    });
    let mut asked = nats.subscribe("ecommerce.__ready").await.unwrap();
    let mut pinged = nats.subscribe("$SRV.PING.ecommerce").await.unwrap();
    nats.flush().await.unwrap();
    let answering = {
        let nats = nats.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            loop {
                let (message, body) = tokio::select! {
                    Some(m) = asked.next() => (m, "{}".to_string()),
                    Some(m) = pinged.next() => (m, hostile.to_string()),
                    else => return,
                };
                if let Some(reply) = message.reply {
                    nats.publish(reply, body.into()).await.unwrap();
                }
            }
        })
    };
    let found = occupant(&nats_spec).await.expect("the hostile stray is found");
    assert!(!found.contains(['\u{1b}', '\r', '\n', '\u{0}']), "{found:?}");
    assert!(found.contains("\\u{1b}[2Jwiped"), "escaped, still readable: {found}");
    assert!(found.len() < 1_000, "cut: {} bytes", found.len());
    answering.abort();

    // On HTTP, a port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_spec = spec(Transport::Http, format!("http://{}", taken.local_addr().unwrap()));
    assert!(occupant(&http_spec).await.is_some_and(|why| why.contains("already taken")));
    drop(taken);
    assert_eq!(occupant(&http_spec).await, None);
}

/// The shipped secured variants, as the default run measures them: each starts brokers of its own
/// (TLS-only nats-server and redis-server wanting the run's password) before its services, with
/// certificates made for the run, and the HTTP one serves HTTPS to the runner's own client; the
/// load goes through them without an error, and when the run ends no broker it started is left
/// and its certificates and password are gone.
#[test]
fn the_secured_variants_run_on_brokers_of_their_own_and_leave_nothing_behind() {
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()));
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/benchmark-config.yaml");
    let secrets_folders = || support::temp_folders("natsrpc-bench-secrets-");
    let before = secrets_folders();
    let runner = Command::new(bin_dir().join("bench"))
        .args(["--config", shipped.to_str().unwrap(), "--reports", reports.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .env_remove("PROFILE")
        .env("STACKS", "nats-secured,nats-redis-secured,http-redis-secured")
        .env("SCENARIOS", "baseline")
        .env("DURATION", "1s")
        .env("WARMUP", "300ms")
        .env("REPETITIONS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = runner.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&run.stderr).to_string() + &String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{said}");
    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let baseline = &results.scenarios[0];
    for stack in &baseline.stacks {
        let measured = &stack.repetitions[0];
        assert!(measured.ok > 100, "{}: {} answers", stack.name, measured.ok);
        assert!(measured.unexpected_errors.is_empty(), "{}: {:?}", stack.name, measured.unexpected_errors);
        assert!(stack.secured_variant_of.is_some(), "{} says which stack it copies", stack.name);
    }
    assert_eq!(baseline.stacks.len(), 3);
    let left: Vec<_> = secrets_folders().into_iter().filter(|folder| !before.contains(folder)).collect();
    assert!(left.is_empty(), "the run's certificates outlive it: {left:?}");
    for port in [4433, 4434, 6433, 6435, 8443] {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "a broker left on {port}");
    }
    let copied = std::fs::read_to_string(reports.join("latest/benchmark-config.yaml")).unwrap();
    assert!(copied.contains("${BENCH_SECRET}"), "the copy keeps the reference, not the password");
    // The password is `bench-` and a NUID: no file of the run holds one.
    for file in walk(&reports) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).to_string();
        let leaked = text.match_indices("bench-").any(|(at, _)| {
            let tail: String = text[at + 6..].chars().take(22).collect();
            tail.len() == 22 && tail.chars().all(|c| c.is_ascii_alphanumeric())
        });
        assert!(!leaked, "{} holds something like the run's password", file.display());
    }
    let _ = std::fs::remove_dir_all(&reports);
}

/// A scale-out measures each instance count as a stack of its own (`nats@1`, `nats@2`), the
/// counts' processes in one queue group, and says which process it scaled.
#[test]
fn a_scale_out_measures_each_instance_count() {
    let nats = NatsServer::start().unwrap();
    let text = format!(
        r#"
run:
  stacks: [nats]
  scenarios: [scale]
  warmup: 200ms
  repetitions: 1
scenarios:
  scale:
    description: one and two instances
    load: {{ model: closed, users: 8, duration: 1s }}
    mix: [{{ endpoint: ecommerce.restock, weight: 1 }}]
    scale_out: {{ instances: [1, 2] }}
{}"#,
        nats_stack(&nats.url())
    );
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-scale-{}", nuid::next()));
    let run = bench_output(&text, &reports, &[]);
    let said = String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{said}");
    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let stacks = &results.scenarios[0].stacks;
    let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["nats@1", "nats@2"]);
    for (stack, count) in stacks.iter().zip([1, 2]) {
        let scaled = stack.scaled.as_ref().unwrap();
        assert_eq!(
            (scaled.of.as_str(), scaled.instances, scaled.process.as_str()),
            ("nats", count, "services")
        );
        assert!(!scaled.balanced, "a queue group needs no balancer");
        assert!(stack.summary.rps.median > 0.0, "{}: nothing answered", stack.name);
        let log = reports.join("latest/logs").join(if count == 1 {
            "nats@1-services.log".to_string()
        } else {
            "nats@2-services-2.log".to_string()
        });
        assert!(log.is_file(), "{} has no log", log.display());
    }
    let _ = std::fs::remove_dir_all(&reports);
}
