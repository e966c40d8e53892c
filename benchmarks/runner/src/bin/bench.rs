//! `bench`: the benchmark runner. Reads `config/benchmark-config.yaml`, runs its scenarios on its
//! stacks (starting and stopping each stack itself), and writes `reports/runs/<UTC time>/` with
//! `results.json`, CSV exports and interval histogram logs; `reports/latest` points at it.
//!
//! ```text
//! bench [--config FILE] [--profile NAME] [--reports DIR]
//! bench selfcheck [--users N] [--duration 5s] [--rounds 3] [--config FILE] [--reports DIR]
//! ```
//! `selfcheck` sets the runner against reference generators on each transport's raw echo
//! ([`bench_runner::selfcheck`]) and exits 1 when it is not within 10% of one.
//! Environment overrides: `PROFILE`, `STACKS` and `SCENARIOS` (comma-separated), `DURATION`
//! (`5s`), `WARMUP`, `REPETITIONS`, `SEED`. Exits 1 when a `performance_expectations` limit is
//! missed, 2 when the configuration is refused or something the run did not start already answers
//! a stack's subjects or holds its port (nothing is measured then), 3 when the run failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bench_results::RunResults;
use bench_runner::BenchError;
use bench_runner::config::BenchmarkConfig;
use bench_runner::run::Runner;
use bench_runner::system::stacks::StartOptions;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    config: PathBuf,
    profile: Option<String>,
    reports: PathBuf,
    /// `bench selfcheck`, with its options.
    selfcheck: Option<SelfCheckArgs>,
}

struct SelfCheckArgs {
    users: u32,
    duration: Duration,
    rounds: u32,
}

fn parse() -> Result<Args, BenchError> {
    let mut args = Args {
        config: PathBuf::from("config/benchmark-config.yaml"),
        profile: std::env::var("PROFILE").ok().filter(|p| !p.is_empty()),
        reports: PathBuf::from("reports"),
        selfcheck: None,
    };
    let mut it = std::env::args().skip(1).peekable();
    if it.peek().map(String::as_str) == Some("selfcheck") {
        it.next();
        args.selfcheck = Some(SelfCheckArgs { users: 32, duration: Duration::from_secs(5), rounds: 3 });
    }
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| BenchError::Usage(format!("{flag} needs a value")));
        let number = |text: String| {
            text.parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| BenchError::Usage(format!("{flag}: not a positive number: {text:?}")))
        };
        match (flag.as_str(), args.selfcheck.as_mut()) {
            ("--config", _) => args.config = PathBuf::from(value()?),
            ("--profile", None) => args.profile = Some(value()?),
            ("--reports", _) => args.reports = PathBuf::from(value()?),
            ("--users", Some(check)) => check.users = number(value()?)?,
            ("--rounds", Some(check)) => check.rounds = number(value()?)?,
            ("--duration", Some(check)) => {
                check.duration = bench_runner::config::duration_text::parse(&value()?)
                    .map_err(|e| BenchError::Usage(format!("--duration: {e}")))?;
            }
            (other, _) => {
                return Err(BenchError::Usage(format!(
                    "unknown argument {other:?}; bench [--config FILE] [--profile NAME] [--reports DIR], \
                     or bench selfcheck [--users N] [--duration 5s] [--rounds 3] [--config FILE] [--reports DIR]"
                )));
            }
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    // The certificates and password made for stacks on brokers of their own, if any, go with the
    // run however it ends.
    let _cleanup = bench_runner::config::run_secrets::Cleanup;
    let prepared = parse().and_then(|args| {
        let config = BenchmarkConfig::load(&args.config)?;
        let settings = config.settings(args.profile.as_deref(), &|name| std::env::var(name).ok())?;
        Ok((args, config, settings))
    });
    let (args, config, settings) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("bench: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = match args.selfcheck.is_some() {
        true => selfcheck(args, config, settings).await,
        false => run(args, config, settings).await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error @ (BenchError::Occupied(_) | BenchError::Build(_))) => {
            eprintln!("bench: refused: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::from(3)
        }
    }
}

/// Sets the runner against the reference generators; answers whether it was within 10% of each.
async fn selfcheck(
    args: Args,
    config: BenchmarkConfig,
    settings: bench_runner::config::RunSettings,
) -> Result<bool, BenchError> {
    let Some(check) = args.selfcheck else { return Ok(true) };
    for stack in bench_runner::selfcheck::ECHO_STACKS {
        if let Some(occupant) = bench_runner::system::stacks::occupant(config.stack(stack)?).await {
            return Err(BenchError::Occupied(format!("{stack}: {occupant}")));
        }
    }
    let out = args.reports.join("selfcheck").join(stamp());
    let options = bench_runner::selfcheck::Options {
        users: check.users,
        duration: check.duration,
        warmup: settings.warmup,
        rounds: check.rounds,
        out: out.clone(),
    };
    let start = StartOptions::beside_this_binary(&out.join("logs"))?;
    std::fs::create_dir_all(&start.log_dir).map_err(BenchError::io(&start.log_dir))?;
    let checks = bench_runner::selfcheck::run(&config, &options, &start).await?;
    println!(
        "\nselfcheck: the runner against reference generators, {} in flight, {} round(s) of {:?}:",
        check.users, check.rounds, check.duration
    );
    for c in &checks {
        let median =
            |figure: fn(&(bench_runner::selfcheck::Figure, bench_runner::selfcheck::Figure)) -> f64| {
                bench_results::Spread::of(c.rounds.iter().map(figure)).median
            };
        let cpu =
            |side: fn(&(bench_runner::selfcheck::Figure, bench_runner::selfcheck::Figure)) -> Option<f64>| {
                let read: Vec<f64> = c.rounds.iter().filter_map(side).collect();
                if read.is_empty() {
                    "?".to_string()
                } else {
                    format!("{:.1}", bench_results::Spread::of(read.into_iter()).median)
                }
            };
        println!(
            "  {} ({}): runner {:.0}/s, {} {:.0}/s: {:.2}x {} (generator CPU per answer, medians: runner {} µs, {} {} µs)",
            c.stack,
            c.transport,
            median(|(ours, _)| ours.rps),
            c.reference,
            median(|(_, theirs)| theirs.rps),
            c.ratio(),
            if c.held() { "(within 10%)" } else { "(NOT within 10%)" },
            cpu(|(ours, _)| ours.cpu_us),
            c.reference,
            cpu(|(_, theirs)| theirs.cpu_us),
        );
    }
    let path = out.join("selfcheck.json");
    let json = serde_json::to_vec_pretty(&checks).map_err(BenchError::json(&path))?;
    std::fs::write(&path, json).map_err(BenchError::io(&path))?;
    println!("results: {}", out.join("selfcheck.json").display());
    Ok(checks.iter().all(bench_runner::selfcheck::Check::held))
}

/// Now in UTC, as run folders are named (`20261130T021500Z`).
fn stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Runs and reports; answers whether every expectation held.
async fn run(
    args: Args,
    config: BenchmarkConfig,
    settings: bench_runner::config::RunSettings,
) -> Result<bool, BenchError> {
    let stamp = stamp();
    if let Some(cpus) = &settings.generator_cpus {
        // Every thread of this process, and those it starts later, on these CPUs.
        let placed = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .status();
        if !placed.is_ok_and(|status| status.success()) {
            return Err(BenchError::Process(format!(
                "could not place the load generator on CPUs {cpus} (taskset)"
            )));
        }
    }
    // Nothing this run did not start may answer a stack's subjects or hold its port: checked for
    // every stack before the first measurement, and again as each one starts.
    let mut occupied = Vec::new();
    for stack in &settings.stacks {
        if let Some(occupant) = bench_runner::system::stacks::occupant(config.stack(stack)?).await {
            occupied.push(format!("{stack}: {occupant}"));
        }
    }
    if !occupied.is_empty() {
        return Err(BenchError::Occupied(occupied.join("\n  ")));
    }
    let start = bench_runner::system::stacks::StartOptions::beside_this_binary(&args.reports)?;
    let mut missing = Vec::new();
    for stack in &settings.stacks {
        for process in &config.stack(stack)?.processes {
            if start.program(&process.command[0], process.listens.is_some()).is_none() {
                missing.push(format!("{stack}: {}", start.bin_dir.join(&process.command[0]).display()));
            }
        }
    }
    // An HTTP API of several instances, or scaled out, runs behind HAProxy.
    let scaling =
        settings.scenarios.iter().any(|s| config.scenarios.get(s).is_some_and(|s| s.scale_out.is_some()));
    for stack in &settings.stacks {
        let spec = config.stack(stack)?;
        let balanced = spec.processes.iter().any(|p| p.serves && (p.instances > 1 || scaling));
        if balanced && start.program(bench_runner::system::balancer::PROGRAM, true).is_none() {
            missing.push(format!(
                "{stack}: {} (its load balancer; ./scripts/start-test-services.sh installs it)",
                bench_runner::system::balancer::PROGRAM
            ));
        }
    }
    if !missing.is_empty() {
        return Err(BenchError::Build(format!(
            "missing binaries (./scripts/run-benchmarks.sh builds them):\n  {}",
            missing.join("\n  ")
        )));
    }
    let name = format!("runs/{stamp}");
    let out = args.reports.join(&name);
    std::fs::create_dir_all(&out).map_err(BenchError::io(&out))?;
    std::fs::copy(&args.config, out.join("benchmark-config.yaml")).map_err(BenchError::io(&args.config))?;
    println!(
        "bench: {} scenario(s) x {} stack(s) x {} repetition(s){} -> {}",
        settings.scenarios.len(),
        settings.stacks.len(),
        settings.repetitions,
        args.profile.as_deref().map(|p| format!(", profile {p}")).unwrap_or_default(),
        out.display()
    );
    let runner = Runner {
        config,
        settings,
        profile: args.profile,
        out: out.clone(),
        start: StartOptions::beside_this_binary(&out.join("logs"))?,
        interval: Duration::from_secs(1),
    };
    // Stopped half-way (Ctrl-C, SIGTERM), the run is dropped: each stack it started is killed by
    // its guard (a stalled process too), and each private broker's folder removed.
    let stopped = natsrpc::shutdown_signal();
    let results = tokio::select! {
        results = runner.run() => results?,
        () = stopped => {
            return Err(BenchError::Process(
                "stopped by a signal: the stacks it had started are stopped; no results written".into(),
            ));
        }
    };
    results.write(&out)?;
    point_latest(&args.reports, &name)?;
    print_summary(&results, &out);
    Ok(results.expectations.iter().all(|e| e.held))
}

/// `reports/latest` -> `runs/<stamp>`, replaced atomically.
fn point_latest(reports: &Path, target: &str) -> Result<(), BenchError> {
    let link = reports.join("latest");
    let temporary = reports.join(".latest.new");
    let _ = std::fs::remove_file(&temporary);
    std::os::unix::fs::symlink(target, &temporary)
        .and_then(|()| std::fs::rename(&temporary, &link))
        .map_err(BenchError::io(link))
}

fn print_summary(results: &RunResults, out: &Path) {
    for scenario in &results.scenarios {
        println!("\n{} ({}): {}", scenario.name, scenario.load.label(), scenario.description);
        let width = scenario.stacks.iter().map(|s| s.name.len()).max().unwrap_or(0).max(15);
        println!(
            "  {:<width$} {:>24} {:>9} {:>9} {:>11} {:>13}",
            "stack", "answers/s (min..max)", "p50 ms", "p99 ms", "unexpected", "CPU ms/1k"
        );
        let mut stacks: Vec<_> = scenario.stacks.iter().collect();
        stacks.sort_by(|a, b| b.summary.rps.median.total_cmp(&a.summary.rps.median));
        for stack in stacks {
            let s = &stack.summary;
            println!(
                "  {:<width$} {:>8.0} ({:>6.0}..{:>6.0}) {:>9.2} {:>9.2} {:>10.3}% {:>13.1}",
                stack.name,
                s.rps.median,
                s.rps.min,
                s.rps.max,
                s.p50_us.median / 1000.0,
                s.p99_us.median / 1000.0,
                s.unexpected_rate.median * 100.0,
                s.cpu_ms_per_1000.median
            );
        }
        for note in scenario.stacks.iter().filter_map(bench_report::scenario_views::note) {
            println!("  - {note}");
        }
        // An open loop's latencies count from the planned send: the generator's own lateness is in them.
        let lags: Vec<String> = scenario
            .stacks
            .iter()
            .filter_map(|stack| {
                let m = stack.repetitions.iter().find(|m| m.target_rps.is_some())?;
                Some(format!(
                    "{} {} us p50, {} us p99",
                    stack.name, m.dispatch_lag_us.p50, m.dispatch_lag_us.p99
                ))
            })
            .collect();
        if !lags.is_empty() {
            println!("  - the generator's own dispatch lag (in every latency above): {}", lags.join("; "));
        }
    }
    use bench_report::analysis::{Pairing, pair_costs};
    for pairing in [Pairing::Validation, Pairing::Security] {
        let costs = pair_costs(results, pairing);
        if costs.is_empty() {
            continue;
        }
        println!(
            "\n{}",
            match pairing {
                Pairing::Validation =>
                    "what validation costs end to end (each stack beside its build without validation):",
                Pairing::Security =>
                    "what security costs end to end (each secured variant, TLS and passwords, beside its plain stack):",
            }
        );
        for cost in costs {
            let figures = cost.figures();
            let (with, without, kept, cpu) = (&figures[0], &figures[1], &figures[2], &figures[7]);
            let timed = figures.get(8).map(|us| format!(" (its services time validating at {us} µs)"));
            println!(
                "  {} on {}: {with} answers/s against {without} ({kept}), p50 {} ms against {} ms, {cpu} µs CPU per request{}",
                cost.scenario,
                cost.with,
                figures[3],
                figures[4],
                timed.unwrap_or_default()
            );
        }
    }
    let missed: Vec<_> = results.expectations.iter().filter(|e| !e.held).collect();
    if !results.expectations.is_empty() {
        // Every check held is one line; a missed one is named.
        println!("\nexpectations: {} checked, {} missed", results.expectations.len(), missed.len());
        for check in missed {
            println!("  {}", check.describe());
        }
    }
    if !results.warnings.is_empty() {
        println!("\nwarnings:");
        for warning in &results.warnings {
            println!("  - {warning}");
        }
    }
    println!("\nresults: {}", out.join("results.json").display());
}
