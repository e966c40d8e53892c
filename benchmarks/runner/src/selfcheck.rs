//! `bench selfcheck`: is the load generator the same for every transport? On each transport's raw
//! echo (`nats-raw-echo`, `http-raw-echo`: responders that only answer), the runner's closed loop
//! takes turns with a reference generator at the same concurrency, round after round (the order
//! alternating, so that the machine's drift favours neither): `wrk` for HTTP, and for NATS a
//! minimal closed loop of bare async-nats `request`s ([`crate::generator::closed_loop`]) with none of the
//! runner's bookkeeping. Their ratio is the runner's own bias on that transport; the runner's figure
//! is also the highest any stack on that transport can be measured at on this machine.
//!
//! The generator shares the machine with the responder and the broker, so a generator that costs
//! more CPU per request measures every stack on its transport lower: within 10% of the reference
//! is the goal, and a wider gap makes the check fail (exit 1).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use crate::BenchError;
use crate::config::{BenchmarkConfig, RunSettings, Scenario, StackSpec, Transport};
use crate::run::Runner;
use crate::system::process::cpu_time;
use crate::system::stacks::{RunningStack, StartOptions};

/// The raw echoes checked, one per transport.
pub use bench_results::ECHO_STACKS;

/// The runner within this share of the reference passes.
pub const TOLERANCE: f64 = 0.10;

/// The request body both generators send (a `restock`, as in the runner's mixes).
const BODY: &str = r#"{"sku":"SKU-00001","quantity":5}"#;

/// How the check runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests in flight (users, connections), the same for both generators.
    pub users: u32,
    /// How long each generator measures per round.
    pub duration: Duration,
    /// Warm-up before each measurement.
    pub warmup: Duration,
    /// Rounds per transport.
    pub rounds: u32,
    /// Where the runner's own run folders go.
    pub out: PathBuf,
}

/// One generator's measurement.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Figure {
    /// Answers per second.
    pub rps: f64,
    /// The generator's CPU per answer, microseconds (`None` when it could not be read).
    pub cpu_us: Option<f64>,
}

/// One transport's rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The echo stack.
    pub stack: String,
    /// `nats` or `http`.
    pub transport: String,
    /// What the runner is compared with.
    pub reference: String,
    /// Per round: the runner, the reference.
    pub rounds: Vec<(Figure, Figure)>,
}

impl Check {
    /// The median over the rounds of the runner's throughput against the reference's.
    pub fn ratio(&self) -> f64 {
        let mut ratios: Vec<f64> =
            self.rounds.iter().filter(|(_, r)| r.rps > 0.0).map(|(ours, r)| ours.rps / r.rps).collect();
        ratios.sort_by(f64::total_cmp);
        match ratios.len() {
            0 => 0.0,
            n if n % 2 == 1 => ratios[n / 2],
            n => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
        }
    }

    /// Whether the runner is within [`TOLERANCE`] of the reference.
    pub fn held(&self) -> bool {
        (self.ratio() - 1.0).abs() <= TOLERANCE
    }
}

/// Runs the check on each raw echo of `config` (a transport whose reference is missing, such as
/// `wrk` not installed, is reported and skipped).
pub async fn run(
    config: &BenchmarkConfig,
    options: &Options,
    start: &StartOptions,
) -> Result<Vec<Check>, BenchError> {
    let mut checks = Vec::new();
    for stack in ECHO_STACKS {
        let spec = config.stack(stack)?;
        let reference = match spec.transport {
            Transport::Nats => "bare async-nats requests".to_string(),
            Transport::Http if wrk_installed() => "wrk".to_string(),
            Transport::Http => {
                println!("selfcheck: {stack}: wrk is not installed (apt-get install wrk), skipped");
                continue;
            }
        };
        let mut check = Check {
            stack: stack.to_string(),
            transport: if spec.transport == Transport::Nats { "nats" } else { "http" }.into(),
            reference,
            rounds: Vec::new(),
        };
        for round in 1..=options.rounds {
            // Turns alternate, so that a machine getting slower or faster favours neither.
            let (ours, theirs) = if round % 2 == 1 {
                let ours = runner_figure(config, stack, options, round).await?;
                (ours, reference_figure(stack, spec, options, start).await?)
            } else {
                let theirs = reference_figure(stack, spec, options, start).await?;
                (runner_figure(config, stack, options, round).await?, theirs)
            };
            println!(
                "selfcheck: {stack} round {round}/{}: runner {:.0}/s, {} {:.0}/s ({:.2}x)",
                options.rounds,
                ours.rps,
                check.reference,
                theirs.rps,
                if theirs.rps > 0.0 { ours.rps / theirs.rps } else { 0.0 }
            );
            check.rounds.push((ours, theirs));
        }
        checks.push(check);
    }
    Ok(checks)
}

/// The runner, as a run of one closed-loop scenario on `stack`.
async fn runner_figure(
    config: &BenchmarkConfig,
    stack: &str,
    options: &Options,
    round: u32,
) -> Result<Figure, BenchError> {
    let scenario: Scenario = serde_yaml::from_str(&format!(
        "description: the runner against {stack}\nload: {{ model: closed, users: {}, duration: {}ms }}\nmix: [{{ endpoint: ecommerce.restock, weight: 1 }}]\n",
        options.users,
        options.duration.as_millis()
    ))
    .map_err(|e| BenchError::Config(e.to_string()))?;
    let mut config = config.clone();
    config.scenarios.insert("selfcheck".into(), scenario);
    let settings = RunSettings {
        stacks: vec![stack.to_string()],
        scenarios: vec!["selfcheck".into()],
        warmup: options.warmup,
        repetitions: 1,
        shuffle_stacks: false,
        ..config.run.clone()
    };
    let out = options.out.join(format!("{stack}-round-{round}"));
    let runner = Runner {
        config,
        settings,
        profile: None,
        start: StartOptions::beside_this_binary(&out.join("logs"))?,
        out,
        interval: Duration::from_secs(1),
    };
    let results = runner.run().await?;
    let measured = results
        .scenarios
        .first()
        .and_then(|s| s.stacks.first())
        .and_then(|s| s.repetitions.first())
        .ok_or_else(|| BenchError::Process(format!("the runner measured nothing on {stack}")))?;
    Ok(Figure {
        rps: measured.achieved_rps,
        cpu_us: (measured.answered > 0).then(|| measured.cpu.generator_s * 1e6 / measured.answered as f64),
    })
}

/// The reference generator on `stack`, started for it and stopped after.
async fn reference_figure(
    stack: &str,
    spec: &StackSpec,
    options: &Options,
    start: &StartOptions,
) -> Result<Figure, BenchError> {
    let running = RunningStack::start(stack, spec, start).await?;
    let figure = match spec.transport {
        Transport::Nats => bare_nats(spec, options).await,
        Transport::Http => wrk(spec, options, &start.log_dir).await,
    };
    running.stop(Duration::from_secs(5)).await?;
    figure
}

/// A closed loop of bare `request`s: no recorder, no workload, no checks.
async fn bare_nats(spec: &StackSpec, options: &Options) -> Result<Figure, BenchError> {
    let nats = spec.connect_nats().await?;
    let subject = spec.echo_subject.clone().unwrap_or_else(|| crate::target::raw_echo::NATS_SUBJECT.into());
    let body = Bytes::from_static(BODY.as_bytes());
    let own = std::process::id();
    let before = cpu_time(own);
    let began = Instant::now();
    let result = crate::generator::closed_loop::run(
        options.users as usize,
        options.warmup,
        options.duration,
        move || {
            let (nats, subject, body) = (nats.clone(), subject.clone(), body.clone());
            async move { nats.request(subject, body).await.is_ok() }
        },
    )
    .await;
    // The warm-up's share of the CPU is taken out in proportion to its time.
    let measuring = options.duration.as_secs_f64() / began.elapsed().as_secs_f64().max(1e-9);
    let cpu = before.zip(cpu_time(own)).map(|(b, a)| a.saturating_sub(b).as_secs_f64() * measuring);
    Ok(Figure {
        rps: result.throughput(),
        cpu_us: cpu.filter(|_| result.ok > 0).map(|s| s * 1e6 / result.ok as f64),
    })
}

fn wrk_installed() -> bool {
    Command::new("wrk").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// `wrk` with as many connections as the runner has users, posting [`BODY`].
async fn wrk(spec: &StackSpec, options: &Options, scratch: &Path) -> Result<Figure, BenchError> {
    let script = scratch.join("selfcheck-post.lua");
    std::fs::create_dir_all(scratch).map_err(BenchError::io(scratch))?;
    std::fs::write(
        &script,
        format!("wrk.method = \"POST\"\nwrk.body = '{BODY}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"),
    )
    .map_err(BenchError::io(&script))?;
    let url = format!("{}{}", spec.url, spec.echo_subject.as_deref().unwrap_or("/"));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(options.users as usize);
    let run = |seconds: f64| {
        Command::new("wrk")
            .arg(format!("-t{threads}"))
            .arg(format!("-c{}", options.users))
            .arg(format!("-d{}s", seconds.ceil().max(1.0)))
            .arg("-s")
            .arg(&script)
            .arg(&url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(BenchError::program("wrk"))
    };
    if !options.warmup.is_zero() {
        let warmup = run(options.warmup.as_secs_f64())?;
        tokio::task::spawn_blocking(move || warmup.wait_with_output())
            .await?
            .map_err(BenchError::program("wrk"))?;
    }
    let child = run(options.duration.as_secs_f64())?;
    let pid = child.id();
    // wrk's CPU, read while it runs (its /proc entry goes once it is reaped).
    let sampler = tokio::spawn(async move {
        let mut last = None;
        while let Some(cpu) = cpu_time(pid) {
            last = Some(cpu);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last
    });
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await?
        .map_err(BenchError::program("wrk"))?;
    let cpu = sampler.await.ok().flatten();
    let text = String::from_utf8_lossy(&output.stdout);
    let (rps, requests) = wrk_figures(&text)
        .ok_or_else(|| BenchError::Process(format!("wrk said nothing readable: {}", text.trim())))?;
    Ok(Figure { rps, cpu_us: cpu.filter(|_| requests > 0.0).map(|c| c.as_secs_f64() * 1e6 / requests) })
}

/// Requests per second and requests answered, from wrk's summary.
fn wrk_figures(text: &str) -> Option<(f64, f64)> {
    let rps = text.lines().find_map(|l| l.trim().strip_prefix("Requests/sec:"))?.trim().parse().ok()?;
    let requests = text.lines().find_map(|l| l.trim().split_once(" requests in ")?.0.parse().ok())?;
    Some((rps, requests))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_summary_is_read() {
        let text = "Running 5s test @ http://127.0.0.1:8084/raw/echo\n  2 threads and 32 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   640.12us  300.10us   9.00ms   90.00%\n  151234 requests in 5.00s, 17.31MB read\nRequests/sec:  30246.80\nTransfer/sec:      3.46MB\n";
        assert_eq!(wrk_figures(text), Some((30246.80, 151234.0)));
        assert_eq!(wrk_figures("wrk: connection refused"), None);
    }

    #[test]
    fn the_ratio_is_the_median_of_the_rounds() {
        let f = |rps| Figure { rps, cpu_us: None };
        let check = Check {
            stack: "s".into(),
            transport: "nats".into(),
            reference: "r".into(),
            rounds: vec![(f(90.0), f(100.0)), (f(50.0), f(100.0)), (f(100.0), f(100.0))],
        };
        assert!((check.ratio() - 0.9).abs() < 1e-9);
        assert!(check.held());
        let skewed = Check { rounds: vec![(f(80.0), f(100.0))], ..check };
        assert!(!skewed.held());
    }
}
