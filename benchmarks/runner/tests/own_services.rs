//! Benchmarking one's own services: the framework's echo example from the shipped
//! `config/echo.yaml` alone (bodies of one's own, MessagePack, a template file with a CSV, Poisson
//! arrivals), a service that already runs, measured as it is and left running, and the short
//! form of `config/test-config.yaml` (rates per scenario) on the shipped stacks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

use bench_results::RunResults;
use natsrpc::testing::NatsServer;
use support::{bin_dir, workspace};

mod support;

/// One test at a time on the shared brokers: a stack of one, still running, is what another's
/// run refuses to start beside (it would take part of the load).
static SHARED_BROKERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn shared_brokers() -> std::sync::MutexGuard<'static, ()> {
    SHARED_BROKERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn reports() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("natsrpc-bench-{}", nuid::next()))
}

/// Whether anything answers `echo.echo` on `url`.
fn echo_answers(url: &str) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let Ok(nats) = async_nats::connect(url).await else { return false };
        let asked =
            tokio::time::timeout(std::time::Duration::from_secs(2), nats.request("echo.echo", "{}".into()));
        matches!(asked.await, Ok(Ok(_)))
    })
}

#[test]
fn the_echo_example_is_benchmarked_from_the_shipped_yaml_alone() {
    let server = NatsServer::start().unwrap();
    let reports = reports();
    std::fs::create_dir_all(&reports).unwrap();
    // The shipped file, its server the test's own; its template and CSV beside it.
    let text = std::fs::read_to_string(workspace().join("config/echo.yaml")).unwrap();
    let config = workspace().join(format!("config/echo-test-{}.yaml", nuid::next()));
    std::fs::write(&config, text.replace("nats://127.0.0.1:4222", &server.url())).unwrap();
    let output = support::bench(&config, &reports)
        .args(["--duration", "2s", "--warmup", "0s", "--repetitions", "1"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&config);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let scenario = |name: &str| results.scenarios.iter().find(|s| s.name == name).unwrap();
    let echo = &scenario("echo").stacks[0].repetitions[0];
    let labels: Vec<&str> = echo.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(labels, ["echo.echo", "echo.echo/msgpack"]);
    assert!(echo.endpoints.iter().all(|e| e.ok > 100), "JSON and MessagePack answered: {:?}", echo.endpoints);
    assert!(echo.unexpected_errors.is_empty() && echo.ok == echo.answered, "{:?}", echo.unexpected_errors);
    assert!(
        echo.validation.iter().any(|v| v.endpoint == "echo.echo" && v.requests > 0),
        "the service's own stats were read (`services: [echo]`)"
    );
    assert!(echo.cpu.stack_s > 0.0, "the runner's own process is measured");

    let bursty = &scenario("echo_bursty").stacks[0].repetitions[0];
    assert_eq!(bursty.load_model, "open loop, Poisson arrivals");
    // 2,000 a second for 2 s, as a Poisson process: about 4,000 (3 sigma is 190).
    assert!((3_600..4_400).contains(&bursty.sent), "{}", bursty.sent);
    assert!(
        bursty.unexpected_errors.is_empty() && bursty.ok == bursty.answered,
        "the template's bodies echo"
    );
    assert!(!echo_answers(&server.url()), "the runner stopped the service it started");
    let _ = std::fs::remove_dir_all(&reports);
}

/// Ends the echo it holds, by PID, however the test ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_service_that_already_runs_is_measured_as_it_is_and_left_running() {
    let server = NatsServer::start().unwrap();
    let mut echo = Running(
        Command::new(bin_dir().join("examples/echo"))
            .env("NATS_URL", server.url())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let reports = reports();
    std::fs::create_dir_all(&reports).unwrap();
    let config = reports.join("external.yaml");
    std::fs::write(
        &config,
        format!(
            r#"stacks:
  deployed:
    description: an echo someone else runs
    transport: nats
    url: {}
    services: [echo]
scenarios:
  steady:
    load: {{ model: open, phases: [{{ arrival_rate: 300, duration: 2s }}] }}
    mix:
      - {{ endpoint: echo.echo, body: '{{"n": {{{{random_int 1 9}}}}, "who": "{{{{choice a b}}}}"}}' }}
      - {{ endpoint: echo.nothing_here, name: unknown, body: '{{}}', expect: any }}
run: {{ warmup: 0s, repetitions: 1 }}
"#,
            server.url()
        ),
    )
    .unwrap();
    let output = support::bench(&config, &reports).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let stack = &results.scenarios[0].stacks[0];
    assert!(stack.external, "recorded as running elsewhere");
    let m = &stack.repetitions[0];
    assert_eq!((m.sent, m.answered, m.ok), (600, 600, 600), "{:?}", m.unexpected_errors);
    assert!(!m.resources.iter().any(|u| u.name == "stack"), "no processes of its own were read");
    assert_eq!(m.cpu.stack_s, 0.0);
    assert!(echo.0.try_wait().unwrap().is_none(), "the runner left the deployed service running");
    assert!(echo_answers(&server.url()));

    let report = bench_report::report(&reports.join("latest"), None, 0.2).unwrap();
    let html = report.html;
    assert!(
        html.contains("deployed ran elsewhere") && html.contains("not measured"),
        "the report says what is missing"
    );
    let _ = std::fs::remove_dir_all(&reports);
}

#[test]
fn the_short_form_of_test_config_runs_as_the_open_loops_it_stands_for() {
    let _alone = shared_brokers();
    let reports = reports();
    std::fs::create_dir_all(&reports).unwrap();
    let output = support::bench(&workspace().join("config/test-config.yaml"), &reports)
        .args(["--stacks", "nats,http-redis", "--duration", "2s", "--warmup", "0s"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");

    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let names: Vec<&str> = results.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["analytics", "ecommerce", "file_processing"], "sorted by name");
    for scenario in &results.scenarios {
        assert_eq!(scenario.stacks.len(), 2, "{}", scenario.name);
        for stack in &scenario.stacks {
            let m = &stack.repetitions[0];
            let place = format!("{} on {}", scenario.name, stack.name);
            assert!(m.load_model.starts_with("open loop"), "{place}: {}", m.load_model);
            assert!(m.ok > 0 && m.unexpected_errors.is_empty(), "{place}: {:?}", m.unexpected_errors);
        }
    }
    let analytics = &results.scenarios[0];
    let labels: Vec<&str> = analytics.mix.iter().map(|e| e.name.as_deref().unwrap_or(&e.endpoint)).collect();
    assert_eq!(
        labels,
        [
            "analytics.ingest_batch",
            "analytics.query_aggregates",
            "analytics.query_timeseries",
            "analytics.top_n"
        ]
    );
    // 1000 events a second in batches of 50 and ten readers a second: 30 requests a second (a
    // little less on average, for the first tenth's ramp), two thirds of them batches of 50 events.
    assert_eq!(analytics.mix[0].items, Some(50));
    let m = &analytics.stacks[0].repetitions[0];
    assert!(m.target_rps.is_some_and(|rps| (27.0..=30.0).contains(&rps)), "{:?}", m.target_rps);
    let batches = m.endpoints.iter().find(|e| e.name == "analytics.ingest_batch/x50").unwrap();
    assert!(batches.ok * 10 > m.ok * 5, "{batches:?} of {}", m.ok);

    // One order in ten is sent invalid, and comes back as the validation error it is.
    let ecommerce = &results.scenarios[1];
    assert_eq!(ecommerce.invalid_share, 0.1);
    for stack in &ecommerce.stacks {
        let m = &stack.repetitions[0];
        assert!(m.expected_errors.values().sum::<u64>() > 0, "{}: {:?}", stack.name, m.expected_errors);
    }
    assert!(results.expectations.iter().all(|e| e.held), "{:?}", results.expectations);
    let _ = std::fs::remove_dir_all(&reports);
}

/// A journey that cannot go on: its first step's answer has no such field to capture.
const BROKEN_JOURNEY: &str = r#"
  broken_journey:
    description: a capture that finds nothing ends the journey at its first step
    load: { model: closed, users: 2, duration: 1s }
    flows:
      - name: lost
        steps:
          - { endpoint: ecommerce.create_order, capture: { id: no_such_field } }
          - { endpoint: ecommerce.get_order, body: { order_id: "{{id}}" } }
"#;

#[test]
fn journeys_run_step_by_step_each_answer_feeding_the_next() {
    let _alone = shared_brokers();
    let reports = reports();
    std::fs::create_dir_all(&reports).unwrap();
    // The shipped config (its flows' template beside it), with a broken journey of the test's own.
    let text = std::fs::read_to_string(workspace().join("config/benchmark-config.yaml")).unwrap();
    assert_eq!(text.matches("\nstacks:\n").count(), 1);
    let config = workspace().join(format!("config/journeys-test-{}.yaml", nuid::next()));
    std::fs::write(&config, text.replace("\nstacks:\n", &format!("{BROKEN_JOURNEY}\nstacks:\n"))).unwrap();
    let output = support::bench(&config, &reports)
        .args(["--scenarios", "journeys,broken_journey", "--stacks", "nats,http-redis"])
        .args(["--duration", "2s", "--warmup", "0s", "--repetitions", "1"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&config);
    let said = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    // The broken journey's unexpected errors miss no expectation: it has none.
    assert!(output.status.success(), "{said}");

    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let scenario = |name: &str| results.scenarios.iter().find(|s| s.name == name).unwrap();
    let journeys = scenario("journeys");
    assert_eq!(
        journeys.flows.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["order_lifecycle", "upload"]
    );
    for stack in &journeys.stacks {
        let m = &stack.repetitions[0];
        let labels: Vec<&str> = m.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            labels,
            [
                "order_lifecycle/1 ecommerce.create_order/small",
                "order_lifecycle/2 ecommerce.get_order",
                "order_lifecycle/3 ecommerce.cancel_order",
                "upload/1 fileproc.begin_upload",
                "upload/2 fileproc.upload_chunk",
                "upload/3 fileproc.complete_upload",
            ],
            "{}",
            stack.name
        );
        for (f, journey) in m.flows.iter().enumerate() {
            let place = format!("{} on {}", journey.name, stack.name);
            assert!(journey.ok > 20 && journey.ok == journey.answered, "{place}: {journey:?}");
            // Every journey ran every step, and each succeeded: the order read back and
            // cancelled was the one placed, the chunk and the completion went to the upload
            // begun (an id not captured would be refused as invalid).
            for step in &m.endpoints[f * 3..f * 3 + 3] {
                assert_eq!((step.ok, step.answered), (journey.ok, journey.ok), "{place}: {step:?}");
            }
            let slowest_step = m.endpoints[f * 3..f * 3 + 3].iter().map(|s| s.latency_us.p50).max().unwrap();
            assert!(journey.latency_us.p50 >= slowest_step, "a journey takes its steps' time: {place}");
        }
        // The lifecycle's 20 ms think time before reading the order back is in its journey.
        assert!(m.flows[0].latency_us.p50 >= 20_000, "{:?}", m.flows[0].latency_us);
        assert!(m.unexpected_errors.is_empty(), "{}: {:?}", stack.name, m.unexpected_errors);
    }

    let broken = scenario("broken_journey");
    for stack in &broken.stacks {
        let m = &stack.repetitions[0];
        let (first, second, journey) = (&m.endpoints[0], &m.endpoints[1], &m.flows[0]);
        assert!(first.answered > 0 && first.ok == 0, "{}: {first:?}", stack.name);
        assert_eq!(
            first.unexpected_errors.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
            ["flow:capture_missing"]
        );
        assert_eq!(second.answered, 0, "the journey ended before its second step");
        assert_eq!((journey.ok, journey.answered), (0, first.answered), "every journey ended early");
    }
    let _ = std::fs::remove_dir_all(&reports);
}
