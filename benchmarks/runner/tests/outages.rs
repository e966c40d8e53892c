//! Outages mid-run: `bench` takes a stack's broker or instance down (or cuts the stack off its
//! broker, or kills its archive's database) as a scenario says, on brokers and databases it starts
//! for the stack (never the ones the config names), measures the recovery and the archive's
//! backlog, and leaves nothing running.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use bench_results::RunResults;

mod support;

/// The open loop's rate, requests a second. A debug build of http-redis with its archive serves
/// about 156 a second on an idle 2-core machine (12 ms of CPU an order), and fewer on a busy one:
/// at 150 a second it ran at capacity, and an outage's backlog could never drain, so the stack
/// looked as though it had not recovered. Less than half its capacity leaves room to drain, and
/// the assertions stay the same.
const RATE: u32 = 60;

/// Two stacks whose configured brokers are unreachable (port 1): the run can only work on the
/// private brokers the runner starts for them. `$RATE` is [`RATE`].
const CONFIG: &str = r#"
run:
  stacks: [nats, http-redis]
  scenarios: [broker_restart, instance_stall, broker_cut, database_down]
  warmup: 300ms
  repetitions: 1
scenarios:
  broker_restart:
    description: the broker killed and started again
    load: { model: open, phases: [{ arrival_rate: $RATE, duration: 6s }] }
    mix: [{ endpoint: ecommerce.create_order, size: small, weight: 1 }]
    convergence: { settle: 20s, poll: 20ms }
    archive: true
    outages: [{ at: 2s, kill: broker, for: 1500ms }]
  instance_stall:
    description: the service stopped and let run
    load: { model: open, phases: [{ arrival_rate: $RATE, duration: 5s }] }
    mix: [{ endpoint: ecommerce.create_order, size: small, weight: 1 }]
    convergence: { settle: 20s, poll: 20ms }
    outages: [{ at: 2s, stall: instance, for: 1s }]
  broker_cut:
    description: the services cut off from NATS, which stays up
    load: { model: open, phases: [{ arrival_rate: $RATE, duration: 5s }] }
    mix: [{ endpoint: ecommerce.create_order, size: small, weight: 1 }]
    convergence: { settle: 20s, poll: 20ms }
    outages: [{ at: 2s, cut: broker, for: 1s }]
    stacks: [nats]
  database_down:
    description: the archive's database killed and started again
    load: { model: open, phases: [{ arrival_rate: $RATE, duration: 7s }] }
    mix: [{ endpoint: ecommerce.create_order, size: small, weight: 1 }]
    convergence: { settle: 20s, poll: 20ms }
    archive: true
    outages: [{ at: 2s, kill: database, for: 3s }]
stacks:
  nats:
    description: natsrpc services on NATS
    transport: nats
    url: nats://127.0.0.1:1
    brokers: [nats]
    processes:
      - { name: services, command: [nats-services], env: { STORE: memory } }
  http-redis:
    description: the axum API on Redis
    transport: http
    url: http://127.0.0.1:18091
    brokers: [redis]
    processes:
      - { name: api, command: [http-redis], env: { STORE: redis, REDIS_URL: "redis://127.0.0.1:1" } }
"#;

fn broker_folders() -> Vec<std::path::PathBuf> {
    let entries = std::fs::read_dir(std::env::temp_dir()).unwrap().flatten();
    entries
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("natsrpc-bench-brokers-"))
        })
        .collect()
}

/// One outage run at a time: each checks that no private broker of its own is left, which the
/// other's would look like.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What a run of `bench` on `config_text` left: its reports folder, whether it succeeded, what it
/// printed, and the private broker folders there were before it (run alone: see `ONE_AT_A_TIME`).
struct Ran {
    reports: std::path::PathBuf,
    success: bool,
    said: String,
    before: Vec<std::path::PathBuf>,
}

fn run_alone(config_text: &str, _alone: &std::sync::MutexGuard<'_, ()>) -> Ran {
    let reports = std::env::temp_dir().join(format!("natsrpc-bench-outages-{}", nuid::next()));
    std::fs::create_dir_all(&reports).unwrap();
    let config = reports.join("config.yaml");
    std::fs::write(&config, config_text).unwrap();
    let before = broker_folders();
    let run = support::bench(&config, &reports).output().unwrap();
    let said = String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    Ran { reports, success: run.status.success(), said, before }
}

/// Nothing of the private brokers is left: no folder, no process.
fn nothing_left(before: &[std::path::PathBuf]) {
    let left: Vec<_> = broker_folders().into_iter().filter(|folder| !before.contains(folder)).collect();
    assert!(left.is_empty(), "the private brokers' data outlives the run: {left:?}");
    let running = Command::new("pgrep").args(["-f", "natsrpc-bench-brokers-"]).output().unwrap();
    assert!(
        running.stdout.is_empty(),
        "a private broker is left running: {}",
        String::from_utf8_lossy(&running.stdout)
    );
}

#[test]
fn a_killed_broker_a_stalled_instance_and_a_cut_are_recovered_from_with_nothing_lost() {
    let alone = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let config = CONFIG.replace("$RATE", &RATE.to_string());
    let Ran { reports, success, said, before } = run_alone(&config, &alone);
    assert!(success, "{said}");
    assert!(said.contains("outage: kill nats") && said.contains("outage: kill redis"), "{said}");
    assert!(said.contains("outage: stall services") && said.contains("outage: stall api"), "{said}");
    assert!(said.contains("outage: cut nats"), "{said}");
    assert!(said.contains("outage: kill postgres"), "{said}");

    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    for scenario in &results.scenarios {
        let stacks = if scenario.name == "broker_cut" { 1 } else { 2 };
        assert_eq!(scenario.stacks.len(), stacks, "{}: {said}", scenario.name);
        for stack in &scenario.stacks {
            let place = format!("{} on {}", scenario.name, stack.name);
            let m = &stack.repetitions[0];
            let faults = m.faults.as_ref().unwrap_or_else(|| panic!("{place}: no faults figures"));
            assert_eq!(faults.outages.len(), 1, "{place}");
            let outage = &faults.outages[0];
            assert!(outage.began_s >= 2.0 && outage.back_s >= outage.restored_s, "{place}: {outage:?}");
            assert!(outage.pre_fault_rps > f64::from(RATE) * 0.66, "{place}: {outage:?}");
            assert!(faults.recovered, "{place} did not recover: {outage:?}");
            assert!(outage.first_success_ms.is_some() && outage.recovery_ms.is_some(), "{place}: {outage:?}");
            assert_eq!(faults.duplicated, 0, "{place}: {:?}", m.convergence);
            assert_eq!(faults.acknowledged_lost, 0, "{place}: {:?}", m.convergence);
            // Of 5 s or more of load, at least 3 s of orders acknowledged, the outage's failures aside.
            let orders = u64::from(RATE) * 3;
            assert!(
                m.convergence.as_ref().is_some_and(|c| c.orders > orders),
                "{place}: {:?}",
                m.convergence
            );
            let archives = matches!(scenario.name.as_str(), "broker_restart" | "database_down");
            assert_eq!(m.archive.is_some(), archives, "{place}");
            if let Some(archive) = &m.archive {
                // Every order acknowledged is in the archive, through a broker's crash or the
                // database's.
                // The warm-up's orders too.
                let orders = m.convergence.as_ref().map_or(0, |c| c.orders);
                assert!(archive.orders > orders, "{place}: {archive:?}");
                assert_eq!((archive.archived, archive.missing), (archive.orders, 0), "{place}");
                assert!(!archive.backlog.is_empty(), "{place}");
            }
            if scenario.name == "database_down" {
                // Orders went on being accepted; their events waited for the database, in the
                // broker, and were archived once it was back.
                let waited = outage.backlog_peak.unwrap_or(0);
                let expected = u64::from(RATE) * 3;
                assert!(
                    waited > expected / 2,
                    "{place}: 3 s of orders ({expected}) should wait, {waited} did"
                );
                assert!(outage.drain_ms.is_some(), "{place}: never drained: {outage:?}");
                assert!(
                    outage.errors.is_empty(),
                    "{place}: the database is not in the orders' way: {outage:?}"
                );
            }
        }
    }
    let missed: Vec<String> = results
        .expectations
        .iter()
        .filter(|e| !e.held)
        .filter(|e| (e.scenario.as_str(), e.stack.as_str()) != ("broker_restart", "http-redis"))
        .map(|e| e.describe())
        .collect();
    assert!(missed.is_empty(), "{missed:?}");
    assert_eq!(success, results.expectations.iter().all(|e| e.held), "exit 1 when one is missed");
    let checks: Vec<&str> = results.expectations.iter().map(|e| e.metric.as_str()).collect();
    for metric in ["faults.acknowledged_lost", "faults.duplicated", "faults.not_recovered", "archive.missing"]
    {
        assert!(checks.contains(&metric), "{metric} is checked: {checks:?}");
    }
    nothing_left(&before);
    let _ = std::fs::remove_dir_all(&reports);
}

/// A stack on a three-server NATS cluster the runner starts: the server leading the shop's event
/// stream is killed under load and started again; the stream elects another leader, the services
/// move to the servers left, and no acknowledged order is lost or counted twice.
const CLUSTER: &str = r#"
run:
  stacks: [nats-cluster]
  scenarios: [cluster_node_kill]
  warmup: 300ms
  repetitions: 1
scenarios:
  cluster_node_kill:
    description: the stream's leader killed and started again
    load: { model: open, phases: [{ arrival_rate: 150, duration: 7s }] }
    mix: [{ endpoint: ecommerce.create_order, size: small, weight: 1 }]
    convergence: { settle: 30s, poll: 20ms }
    outages: [{ at: 2s, kill: leader, for: 1500ms }]
stacks:
  nats-cluster:
    description: natsrpc services on a NATS cluster
    transport: nats
    url: nats://127.0.0.1:1
    nats_cluster: 3
    brokers: [nats]
    processes:
      - { name: services, command: [nats-services], env: { STORE: memory } }
"#;

#[test]
fn the_server_leading_a_clusters_stream_killed_under_load_loses_nothing() {
    let alone = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let Ran { reports, success: _, said, before } = run_alone(CLUSTER, &alone);
    assert!(said.contains("outage: kill nats-"), "a server of the cluster: {said}");

    let results = RunResults::read(&reports.join("latest/results.json")).unwrap();
    let m = &results.scenarios[0].stacks[0].repetitions[0];
    let faults = m.faults.as_ref().unwrap_or_else(|| panic!("no faults figures: {said}"));
    let outage = &faults.outages[0];
    assert!(outage.target.starts_with("nats-"), "{outage:?}");
    assert!(faults.recovered, "did not recover: {outage:?}");
    assert_eq!((faults.acknowledged_lost, faults.duplicated), (0, 0), "{:?}", m.convergence);
    assert!(m.convergence.as_ref().is_some_and(|c| c.orders > 700), "{:?}", m.convergence);
    // Three servers, one stream's worth of CPU: sampled as the stack's broker.
    assert!(m.resources.iter().any(|u| u.name == "nats-server"), "{:?}", m.resources);

    nothing_left(&before);
    let _ = std::fs::remove_dir_all(&reports);
}
