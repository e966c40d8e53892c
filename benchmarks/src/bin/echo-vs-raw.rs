//! The framework's cost over raw async-nats, measured as ratios in one run.
//!
//! Three servers, each in its own process, take turns under the same closed-loop load
//! (`--concurrency` requests in flight, a ~100-byte JSON body), round after round (A B C A B C...):
//! - `raw`: an async-nats responder that publishes each request's payload back, nothing else;
//! - `framework`: `examples/echo` (natsrpc: route, decode, validate, handle, encode, envelope,
//!   stats, tracing span), called with the same raw requests;
//! - `framework+client`: the same service called through the typed `natsrpc::Client` (headers,
//!   correlation id, envelope decoding on the caller's side).
//!
//! ```text
//! cargo build --release -p natsrpc --example echo -p benchmarks
//! target/release/echo-vs-raw --rounds 3 --duration 5 --concurrency 64
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use benchmarks::BenchError;
use benchmarks::closed_loop::{self, LoadResult};
use benchmarks::process::{CpuMeter, pids_named};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

// The same allocator as examples/echo, so that the raw responder and the load generator get it too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RAW_SUBJECT: &str = "raw.echo";
const PAYLOAD: &str =
    r#"{"id":12345,"user":"ada@example.com","action":"checkout","items":[1,2,3],"note":"natsrpc bench"}"#;

/// The caller's view of the echo contract: the body's fields, typed.
#[derive(Debug, Clone, Serialize, Deserialize, validator::Validate)]
struct Checkout {
    id: u64,
    user: String,
    action: String,
    items: Vec<u32>,
    note: String,
}
natsrpc::request!(Checkout => Checkout, service = "echo", endpoint = "echo");

struct Options {
    rounds: usize,
    duration: Duration,
    warmup: Duration,
    concurrency: usize,
    url: String,
    json: Option<PathBuf>,
    only: Option<String>,
    /// A command put before each server's, such as `valgrind --tool=callgrind`.
    wrap: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Raw,
    Framework,
    FrameworkClient,
}

impl Target {
    const ALL: [Target; 3] = [Target::Raw, Target::Framework, Target::FrameworkClient];

    fn name(self) -> &'static str {
        match self {
            Target::Raw => "raw",
            Target::Framework => "framework",
            Target::FrameworkClient => "framework+client",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Measurement {
    target: &'static str,
    round: usize,
    throughput: f64,
    p50_us: u64,
    p99_us: u64,
    errors: u64,
    server_cpu_us_per_request: f64,
    broker_cpu_us_per_request: f64,
    generator_cpu_share: f64,
}

#[tokio::main]
async fn main() -> Result<(), BenchError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string());
    if args.first().map(String::as_str) == Some("--serve-raw") {
        return serve_raw(&url).await;
    }
    let options = parse(&args, url)?;
    let nats = async_nats::connect(&options.url).await.map_err(|e| BenchError::Nats(e.to_string()))?;
    let client = natsrpc::Client::new(nats.clone());
    println!(
        "echo-vs-raw: {} rounds x {:?} (+{:?} warm-up), {} in flight, {}-byte body",
        options.rounds,
        options.duration,
        options.warmup,
        options.concurrency,
        PAYLOAD.len()
    );

    let mut results = Vec::new();
    for round in 1..=options.rounds {
        for target in
            Target::ALL.into_iter().filter(|t| options.only.as_deref().is_none_or(|o| o == t.name()))
        {
            let mut server = spawn_server(target, &options.url, &options.wrap)?;
            let outcome = measure(target, round, &options, &nats, &client, server.id()).await;
            stop(&mut server);
            let m = outcome?;
            println!(
                "round {round} {:>17}: {:>8.0} req/s  p50 {:>5} us  p99 {:>6} us  server {:>5.1} us/req  broker {:>5.1} us/req  generator {:>3.0}% CPU  errors {}",
                m.target,
                m.throughput,
                m.p50_us,
                m.p99_us,
                m.server_cpu_us_per_request,
                m.broker_cpu_us_per_request,
                m.generator_cpu_share * 100.0,
                m.errors
            );
            results.push(m);
        }
    }
    report(&results);
    if let Some(path) = &options.json {
        let body = serde_json::to_vec_pretty(&results).map_err(|e| BenchError::Process(e.to_string()))?;
        std::fs::write(path, body).map_err(|e| BenchError::Process(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

async fn measure(
    target: Target,
    round: usize,
    options: &Options,
    nats: &async_nats::Client,
    client: &natsrpc::Client,
    server_pid: u32,
) -> Result<Measurement, BenchError> {
    let subject = if target == Target::Raw { RAW_SUBJECT } else { "echo.echo" };
    wait_until_ready(nats, subject).await?;
    let brokers = pids_named("nats-server");
    let (server_cpu, broker_cpu, generator_cpu) =
        (CpuMeter::start(&[server_pid]), CpuMeter::start(&brokers), CpuMeter::start(&[std::process::id()]));
    let result: LoadResult = match target {
        Target::Raw | Target::Framework => {
            let nats = nats.clone();
            closed_loop::run(options.concurrency, options.warmup, options.duration, move || {
                let nats = nats.clone();
                async move { nats.request(subject, PAYLOAD.into()).await.is_ok() }
            })
            .await
        }
        Target::FrameworkClient => {
            let request: Checkout =
                serde_json::from_str(PAYLOAD).map_err(|e| BenchError::Usage(e.to_string()))?;
            let client = client.clone();
            closed_loop::run(options.concurrency, options.warmup, options.duration, move || {
                let (client, request) = (client.clone(), request.clone());
                async move { client.call(&request).await.is_ok() }
            })
            .await
        }
    };
    // CPU covers warm-up and measurement alike; per request, divide by everything sent in both.
    let total_window = options.warmup + result.elapsed;
    let sent = result.throughput() * total_window.as_secs_f64();
    let per_request = |cpu: Duration| cpu.as_secs_f64() * 1e6 / sent.max(1.0);
    Ok(Measurement {
        target: target.name(),
        round,
        throughput: result.throughput(),
        p50_us: result.percentile_us(0.50),
        p99_us: result.percentile_us(0.99),
        errors: result.errors,
        server_cpu_us_per_request: per_request(server_cpu.elapsed()),
        broker_cpu_us_per_request: per_request(broker_cpu.elapsed()),
        generator_cpu_share: generator_cpu.elapsed().as_secs_f64() / total_window.as_secs_f64(),
    })
}

fn report(results: &[Measurement]) {
    let median = |target: Target, pick: fn(&Measurement) -> f64| -> (f64, f64, f64) {
        let mut values: Vec<f64> = results.iter().filter(|m| m.target == target.name()).map(pick).collect();
        values.sort_by(f64::total_cmp);
        let mid = values.get(values.len() / 2).copied().unwrap_or(f64::NAN);
        (mid, values.first().copied().unwrap_or(f64::NAN), values.last().copied().unwrap_or(f64::NAN))
    };
    println!("\n| target | req/s (median, min..max) | p50 us | p99 us | server CPU us/req |");
    println!("|---|---|---|---|---|");
    for target in Target::ALL {
        let (tput, lo, hi) = median(target, |m| m.throughput);
        let (p50, _, _) = median(target, |m| m.p50_us as f64);
        let (p99, _, _) = median(target, |m| m.p99_us as f64);
        let (cpu, _, _) = median(target, |m| m.server_cpu_us_per_request);
        println!("| {} | {tput:.0} ({lo:.0}..{hi:.0}) | {p50:.0} | {p99:.0} | {cpu:.1} |", target.name());
    }
    // Ratios per round (same round = same machine conditions), then their median.
    let ratio = |target: Target, pick: fn(&Measurement) -> f64| -> (f64, f64, f64) {
        let mut values: Vec<f64> = results
            .iter()
            .filter(|m| m.target == target.name())
            .filter_map(|m| {
                let raw = results.iter().find(|r| r.target == Target::Raw.name() && r.round == m.round)?;
                Some(pick(m) / pick(raw))
            })
            .collect();
        values.sort_by(f64::total_cmp);
        let mid = values.get(values.len() / 2).copied().unwrap_or(f64::NAN);
        (mid, values.first().copied().unwrap_or(f64::NAN), values.last().copied().unwrap_or(f64::NAN))
    };
    println!();
    for target in [Target::Framework, Target::FrameworkClient] {
        let (t, tlo, thi) = ratio(target, |m| m.throughput);
        let (l, llo, lhi) = ratio(target, |m| m.p50_us as f64);
        println!(
            "{} / raw: throughput {t:.3}x ({tlo:.3}..{thi:.3}), median latency {l:.3}x ({llo:.3}..{lhi:.3})",
            target.name()
        );
    }
}

async fn wait_until_ready(nats: &async_nats::Client, subject: &'static str) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if nats.request(subject, PAYLOAD.into()).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::Process(format!("nothing answered on {subject} within 15 s")))
}

fn spawn_server(target: Target, url: &str, wrap: &[String]) -> Result<Child, BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::Process(e.to_string()))?;
    let (program, args) = match target {
        Target::Raw => (exe, vec!["--serve-raw".to_string()]),
        Target::Framework | Target::FrameworkClient => {
            let echo = std::env::var_os("ECHO_BIN").map(PathBuf::from).unwrap_or_else(|| {
                exe.parent().map(|dir| dir.join("examples").join("echo")).unwrap_or_default()
            });
            if !echo.is_file() {
                return Err(BenchError::Process(format!(
                    "{} not found: build it with `cargo build --release -p natsrpc --example echo`",
                    echo.display()
                )));
            }
            (echo, Vec::new())
        }
    };
    let mut command = match wrap.split_first() {
        Some((wrapper, wrapper_args)) => {
            let mut command = Command::new(wrapper);
            command.args(wrapper_args).arg(program);
            command
        }
        None => Command::new(program),
    };
    command
        .args(args)
        .env("NATS_URL", url)
        // The benchmark measures the framework, not log formatting.
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| BenchError::Process(format!("cannot start the {} server: {e}", target.name())))
}

/// SIGTERM first (the framework drains), then a kill if it lingers.
fn stop(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The baseline: subscribe, publish each payload back to its reply subject, nothing else.
async fn serve_raw(url: &str) -> Result<(), BenchError> {
    let nats = async_nats::connect(url).await.map_err(|e| BenchError::Nats(e.to_string()))?;
    let mut requests = nats.subscribe(RAW_SUBJECT).await.map_err(|e| BenchError::Nats(e.to_string()))?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| BenchError::Process(e.to_string()))?;
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok(()),
            message = requests.next() => {
                let Some(message) = message else { return Ok(()) };
                if let Some(reply) = message.reply {
                    let _ = nats.publish(reply, message.payload).await;
                }
            }
        }
    }
}

fn parse(args: &[String], url: String) -> Result<Options, BenchError> {
    let mut options = Options {
        rounds: 3,
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        concurrency: 64,
        url,
        json: None,
        only: None,
        wrap: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value =
            || it.next().cloned().ok_or_else(|| BenchError::Usage(format!("{flag} needs a value")));
        let number =
            |v: String| v.parse::<f64>().map_err(|_| BenchError::Usage(format!("{flag}: not a number: {v}")));
        match flag.as_str() {
            "--rounds" => options.rounds = number(value()?)?.max(1.0) as usize,
            "--duration" => options.duration = Duration::from_secs_f64(number(value()?)?),
            "--warmup" => options.warmup = Duration::from_secs_f64(number(value()?)?),
            "--concurrency" => options.concurrency = number(value()?)?.max(1.0) as usize,
            "--json" => options.json = Some(PathBuf::from(value()?)),
            "--only" => options.only = Some(value()?),
            "--wrap" => options.wrap = value()?.split_whitespace().map(str::to_string).collect(),
            other => {
                return Err(BenchError::Usage(format!(
                    "unknown flag {other}; flags: --rounds N --duration SECS --warmup SECS --concurrency N --json PATH --only raw|framework|framework+client --wrap CMD"
                )));
            }
        }
    }
    Ok(options)
}
