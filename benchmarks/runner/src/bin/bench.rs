//! `bench`: the benchmark runner. Reads `config/benchmark-config.yaml`, runs its scenarios on its
//! stacks (starting and stopping each stack itself), and writes `reports/runs/<UTC time>/` with
//! `results.json`, CSV exports and interval histogram logs; `reports/latest` points at it.
//!
//! ```text
//! bench [run] [--config FILE] [--profile NAME] [--stacks A,B] [--scenarios A,B] [--duration 5s] [--out DIR]
//! bench list | validate [--config FILE] [--profile NAME]
//! bench selfcheck [--users N] [--duration 5s] [--rounds 3] [--config FILE] [--out DIR]
//! ```
//! `bench --help` says it all, with examples and the exit codes.
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

/// What `--help` ends with: examples and exit codes.
const AFTER_HELP: &str = "\
Examples:
  bench                                         run the default configuration (what ./scripts/run-benchmarks.sh does)
  bench run --profile quick                     a three-minute smoke run
  bench run --stacks nats,http-redis --scenarios baseline --duration 5s
  bench run --profile faults --out /tmp/reports
  bench list                                    the stacks, scenarios and profiles of the configuration
  bench validate --config my-config.yaml        check a configuration and exit
  bench selfcheck --rounds 5                    the generator against wrk and bare async-nats

Environment: PROFILE, STACKS, SCENARIOS, DURATION, WARMUP, REPETITIONS and SEED do what the flags
of the same names do (a flag wins).

For CI: --format junit > junit.xml (or json, csv) prints the verdict alone on standard output,
progress on standard error; each run folder has its junit.xml too.

Exit codes:
  0  every expectation held (validate: the configuration is valid)
  1  a performance expectation or an invariant was missed (selfcheck: not within 10%)
  2  refused before measuring: bad arguments or configuration, a missing binary, or something the
     run did not start already answers a stack's subjects or holds its port
  3  the run failed";

/// The benchmark runner: runs the scenarios of a YAML configuration on its stacks (starting and
/// stopping each stack itself) and writes results.json, CSV exports and histogram logs.
#[derive(Debug, clap::Parser)]
#[command(name = "bench", version, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command: `run`.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run the scenarios on the stacks (the default).
    Run(RunArgs),
    /// List the configuration's stacks, scenarios and profiles.
    List(ConfigArgs),
    /// Check the configuration (and the run its flags select) and exit.
    Validate(RunArgs),
    /// Set the load generator against reference generators on each transport's raw echo.
    Selfcheck(SelfCheckArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct ConfigArgs {
    /// The configuration file.
    #[arg(long, value_name = "FILE", default_value = "config/benchmark-config.yaml")]
    config: PathBuf,
    /// A profile of the configuration's `profiles` (or PROFILE).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Where runs are written (`runs/<UTC time>/`, and `latest`).
    #[arg(long, visible_alias = "reports", value_name = "DIR", default_value = "reports")]
    out: PathBuf,
    /// The stacks, comma-separated (or STACKS).
    #[arg(long, value_name = "A,B")]
    stacks: Option<String>,
    /// The scenarios, comma-separated (or SCENARIOS).
    #[arg(long, value_name = "A,B")]
    scenarios: Option<String>,
    /// Every scenario's duration, such as 5s (or DURATION).
    #[arg(long, value_name = "TIME")]
    duration: Option<String>,
    /// The warm-up before each measurement (or WARMUP).
    #[arg(long, value_name = "TIME")]
    warmup: Option<String>,
    /// Repetitions of each scenario on each stack (or REPETITIONS).
    #[arg(long, value_name = "N")]
    repetitions: Option<String>,
    /// The seed of payloads and stack orders (or SEED).
    #[arg(long, value_name = "N")]
    seed: Option<String>,
    /// What the run prints at its end on standard output: the summary for people (`text`), or
    /// the verdict for a CI system, every limit checked and each stack's medians (progress then
    /// goes to standard error). `junit.xml` is written beside `results.json` either way.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// What a run prints at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// The summary table, expectations and warnings.
    Text,
    /// One JSON document: passed, the stacks' medians, every limit checked, the warnings.
    Json,
    /// A row per scenario and stack: medians and limits missed.
    Csv,
    /// JUnit XML: a test suite per scenario, a test case per limit checked.
    Junit,
}

#[derive(Debug, Clone, clap::Args)]
struct SelfCheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Where its figures are written (`selfcheck/<UTC time>/`).
    #[arg(long, visible_alias = "reports", value_name = "DIR", default_value = "reports")]
    out: PathBuf,
    /// Requests in flight.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    users: u32,
    /// Each round's duration per generator.
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = duration)]
    duration: Duration,
    /// Rounds, taking turns.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
}

fn duration(text: &str) -> Result<Duration, String> {
    bench_runner::config::duration_text::parse(text).map_err(|e| e.to_string())
}

/// What was asked.
enum Mode {
    Run,
    List,
    Validate,
    Selfcheck { users: u32, duration: Duration, rounds: u32 },
}

struct Args {
    mode: Mode,
    config: PathBuf,
    profile: Option<String>,
    reports: PathBuf,
    format: Format,
    /// The settings given as flags, by the environment variable they stand for.
    overrides: Vec<(&'static str, String)>,
}

impl Args {
    fn from(cli: Cli) -> Self {
        let (mode, config, reports, run) = match cli.command {
            None => (Mode::Run, cli.run.config.clone(), cli.run.out.clone(), Some(cli.run)),
            Some(Command::Run(run)) => (Mode::Run, run.config.clone(), run.out.clone(), Some(run)),
            Some(Command::Validate(run)) => (Mode::Validate, run.config.clone(), run.out.clone(), Some(run)),
            Some(Command::List(config)) => (Mode::List, config, PathBuf::from("reports"), None),
            Some(Command::Selfcheck(check)) => (
                Mode::Selfcheck { users: check.users, duration: check.duration, rounds: check.rounds },
                check.config,
                check.out,
                None,
            ),
        };
        let mut overrides = Vec::new();
        let format = run.as_ref().map_or(Format::Text, |run| run.format);
        if let Some(run) = run {
            for (name, value) in [
                ("STACKS", run.stacks),
                ("SCENARIOS", run.scenarios),
                ("DURATION", run.duration),
                ("WARMUP", run.warmup),
                ("REPETITIONS", run.repetitions),
                ("SEED", run.seed),
            ] {
                overrides.extend(value.map(|value| (name, value)));
            }
        }
        let profile = config.profile.or_else(|| std::env::var("PROFILE").ok()).filter(|p| !p.is_empty());
        Args { mode, config: config.config, profile, reports, format, overrides }
    }

    /// A setting's value: its flag's, else the environment's.
    fn lookup(&self, name: &str) -> Option<String> {
        match self.overrides.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => Some(value.clone()),
            None => std::env::var(name).ok(),
        }
    }
}

/// The configuration's stacks, scenarios and profiles, one line each.
fn list(config: &BenchmarkConfig) {
    println!("stacks:");
    for (name, spec) in &config.stacks {
        println!("  {name:<24} {}", spec.description);
    }
    println!("scenarios:");
    for (name, scenario) in &config.scenarios {
        println!("  {name:<24} {}", scenario.description);
    }
    println!("profiles:");
    for (name, profile) in &config.profiles {
        println!("  {name:<24} {}", profile.description);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // The certificates and password made for stacks on brokers of their own, if any, go with the
    // run however it ends.
    let _cleanup = bench_runner::config::run_secrets::Cleanup;
    let cli = match <Cli as clap::Parser>::try_parse() {
        Ok(cli) => cli,
        // `--help` and `--version` print and exit 0; a usage error prints and exits 2.
        Err(error) => error.exit(),
    };
    let args = Args::from(cli);
    let prepared = BenchmarkConfig::load(&args.config).and_then(|config| {
        if matches!(args.mode, Mode::List) {
            list(&config);
        }
        let settings = config.settings(args.profile.as_deref(), &|name| args.lookup(name))?;
        Ok((config, settings))
    });
    let (config, settings) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("bench: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = match args.mode {
        Mode::List => return ExitCode::SUCCESS,
        Mode::Validate => {
            println!(
                "{}: valid; the run: {} scenario(s) x {} stack(s) x {} repetition(s){}",
                args.config.display(),
                settings.scenarios.len(),
                settings.stacks.len(),
                settings.repetitions,
                args.profile.as_deref().map(|p| format!(", profile {p}")).unwrap_or_default()
            );
            return ExitCode::SUCCESS;
        }
        Mode::Selfcheck { .. } => selfcheck(args, config, settings).await,
        Mode::Run => run(args, config, settings).await,
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
    let Mode::Selfcheck { users, duration, rounds } = args.mode else { return Ok(true) };
    for stack in bench_runner::selfcheck::ECHO_STACKS {
        if let Some(occupant) = bench_runner::system::stacks::occupant(config.stack(stack)?).await {
            return Err(BenchError::Occupied(format!("{stack}: {occupant}")));
        }
    }
    let out = args.reports.join("selfcheck").join(stamp());
    let options = bench_runner::selfcheck::Options {
        users,
        duration,
        warmup: settings.warmup,
        rounds,
        out: out.clone(),
    };
    let start = StartOptions::beside_this_binary(&out.join("logs"))?;
    std::fs::create_dir_all(&start.log_dir).map_err(BenchError::io(&start.log_dir))?;
    let checks = bench_runner::selfcheck::run(&config, &options, &start).await?;
    println!(
        "\nselfcheck: the runner against reference generators, {} in flight, {} round(s) of {:?}:",
        users, rounds, duration
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
    if args.format != Format::Text {
        // Standard output is the verdict's alone.
        bench_runner::progress::to_stderr();
    }
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
    bench_runner::say!(
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
    match args.format {
        Format::Text => {}
        Format::Json => print!("{}", bench_results::verdict::json(&results)),
        Format::Csv => print!("{}", bench_results::verdict::csv(&results)),
        Format::Junit => print!("{}", bench_results::verdict::junit(&results)),
    }
    Ok(bench_results::verdict::passed(&results))
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
        bench_runner::say!("\n{} ({}): {}", scenario.name, scenario.load.label(), scenario.description);
        let width = scenario.stacks.iter().map(|s| s.name.len()).max().unwrap_or(0).max(15);
        bench_runner::say!(
            "  {:<width$} {:>24} {:>9} {:>9} {:>11} {:>13}",
            "stack",
            "answers/s (min..max)",
            "p50 ms",
            "p99 ms",
            "unexpected",
            "CPU ms/1k"
        );
        let mut stacks: Vec<_> = scenario.stacks.iter().collect();
        stacks.sort_by(|a, b| b.summary.rps.median.total_cmp(&a.summary.rps.median));
        for stack in stacks {
            let s = &stack.summary;
            bench_runner::say!(
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
            bench_runner::say!("  - {note}");
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
            bench_runner::say!(
                "  - the generator's own dispatch lag (in every latency above): {}",
                lags.join("; ")
            );
        }
    }
    use bench_report::analysis::{Pairing, pair_costs};
    for pairing in [Pairing::Validation, Pairing::Security] {
        let costs = pair_costs(results, pairing);
        if costs.is_empty() {
            continue;
        }
        bench_runner::say!(
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
            bench_runner::say!(
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
        bench_runner::say!("\nexpectations: {} checked, {} missed", results.expectations.len(), missed.len());
        for check in missed {
            bench_runner::say!("  {}", check.describe());
        }
    }
    if !results.warnings.is_empty() {
        bench_runner::say!("\nwarnings:");
        for warning in &results.warnings {
            bench_runner::say!("  - {warning}");
        }
    }
    bench_runner::say!("\nresults: {}", out.join("results.json").display());
}
