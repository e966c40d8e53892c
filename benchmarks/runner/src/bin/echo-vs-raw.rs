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
//! With `--order`, the same three take turns on `ecommerce.create_order` instead: the checked-in
//! valid sample (`data/test-payloads/ecommerce/create_order.valid.json`, 2.6 KB, 5 items), each
//! request with an order id of its own, served by the `ecommerce` binary; the raw responder echoes
//! the very same bodies. A reply only counts as a success when it is one (no error headers).
//!
//! Besides each target against raw, the report gives `framework+client` against `framework`: the
//! typed client against a bare `request` to the same service.
//!
//! ```text
//! cargo build --release -p natsrpc --example echo -p bench-runner -p ecommerce
//! target/release/echo-vs-raw --rounds 3 --duration 5 --concurrency 64
//! target/release/echo-vs-raw --order --rounds 5
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use bench_runner::BenchError;
use bench_runner::generator::closed_loop::{self, LoadResult};
use bench_runner::system::process::{CpuMeter, pids_named};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

// The same allocator as examples/echo, so that the raw responder and the load generator get it too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RAW_SUBJECT: &str = bench_runner::target::raw_echo::NATS_SUBJECT;
/// The order sample, relative to the workspace (or `ORDER_SAMPLE`).
const ORDER_SAMPLE: &str = "data/test-payloads/ecommerce/create_order.valid.json";
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

/// The framework's cost over raw async-nats, measured as ratios in one run: a raw responder,
/// the echo example, and the echo example through the typed client take turns under the same
/// closed-loop load.
#[derive(Debug, clap::Parser)]
#[command(name = "echo-vs-raw", version, after_help = AFTER_HELP)]
struct Options {
    /// Rounds of the three taking turns.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = at_least_one())]
    rounds: usize,
    /// Seconds each measures per round.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    duration: Duration,
    /// Seconds of warm-up before each measurement.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds)]
    warmup: Duration,
    /// Requests in flight.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = at_least_one())]
    concurrency: usize,
    /// The NATS server (default: `NATS_URL`, else nats://127.0.0.1:4222).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Also write the figures as JSON here.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Only this target.
    #[arg(long, value_parser = ["raw", "framework", "framework+client"])]
    only: Option<String>,
    /// A command put before each server's, such as `valgrind --tool=callgrind`.
    #[arg(long, value_name = "CMD")]
    wrap: Option<String>,
    /// `ecommerce.create_order` (the checked-in sample, served by `ecommerce`) instead of echo.
    #[arg(long)]
    order: bool,
    /// Serve as the raw NATS echo responder instead (the benchmark's `nats-raw-echo` stack).
    #[arg(long, hide = true, conflicts_with = "serve_raw_http")]
    serve_raw: bool,
    /// Serve as the raw HTTP echo responder on `HTTP_ADDR` instead (`http-raw-echo`).
    #[arg(long, hide = true)]
    serve_raw_http: bool,
}

const AFTER_HELP: &str = "Examples:
  cargo build --release -p natsrpc --example echo -p bench-runner -p ecommerce
  target/release/echo-vs-raw --rounds 3 --duration 5 --concurrency 64
  target/release/echo-vs-raw --order --rounds 5 --json reports/echo-vs-raw.json

Exit status: 0, or 1 when a measurement failed (a server did not start, NATS is unreachable),
2 on a usage error.";

impl Options {
    /// The NATS server, as `main` settled it.
    fn url(&self) -> &str {
        self.url.as_deref().unwrap_or("nats://127.0.0.1:4222")
    }
}

fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("not a number of seconds: {text:?}"))
}

/// What the load sends: the echo body, or orders with ids of their own.
#[derive(Clone)]
enum Bodies {
    Echo,
    Orders(Arc<Orders>),
}

/// The order sample with its id cut out, and a counter that makes each request's id new.
struct Orders {
    before: Vec<u8>,
    after: Vec<u8>,
    /// Unique per run, so that a service kept between rounds never sees an id twice.
    nonce: String,
    next: AtomicU64,
    typed: ecommerce::contracts::CreateOrder,
}

impl Orders {
    fn load() -> Result<Self, BenchError> {
        let path = std::env::var("ORDER_SAMPLE").unwrap_or_else(|_| ORDER_SAMPLE.to_string());
        let sample = std::fs::read(&path).map_err(BenchError::io(&path))?;
        let typed: ecommerce::contracts::CreateOrder =
            serde_json::from_slice(&sample).map_err(BenchError::json(&path))?;
        let quoted = format!("\"{}\"", typed.order_id);
        let at = find(&sample, quoted.as_bytes()).ok_or_else(|| {
            BenchError::Usage(format!("{path}: the order id is not in the body as written"))
        })?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(Self {
            before: sample[..at].to_vec(),
            after: sample[at + quoted.len()..].to_vec(),
            nonce: format!("{:08x}", nanos.as_secs() as u32),
            next: AtomicU64::new(0),
            typed,
        })
    }

    /// A new order id of the sample's length.
    fn id(&self) -> String {
        format!("ord_{}{:016x}", self.nonce, self.next.fetch_add(1, AtomicOrdering::Relaxed))
    }

    fn body(&self) -> Bytes {
        let id = self.id();
        let mut body = Vec::with_capacity(self.before.len() + id.len() + 2 + self.after.len());
        body.extend_from_slice(&self.before);
        body.push(b'"');
        body.extend_from_slice(id.as_bytes());
        body.push(b'"');
        body.extend_from_slice(&self.after);
        body.into()
    }

    fn typed(&self) -> ecommerce::contracts::CreateOrder {
        ecommerce::contracts::CreateOrder { order_id: self.id(), ..self.typed.clone() }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

impl Bodies {
    fn next(&self) -> Bytes {
        match self {
            Bodies::Echo => Bytes::from_static(PAYLOAD.as_bytes()),
            Bodies::Orders(orders) => orders.body(),
        }
    }
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
    let mut options = <Options as clap::Parser>::parse();
    let url = options.url.take().or_else(|| std::env::var("NATS_URL").ok());
    options.url = Some(url.unwrap_or_else(|| "nats://127.0.0.1:4222".to_string()));
    if options.serve_raw {
        return bench_runner::target::raw_echo::serve_nats(options.url()).await;
    }
    if options.serve_raw_http {
        let address = std::env::var("HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:8084".to_string());
        let address = address
            .parse()
            .map_err(|_| BenchError::Usage(format!("HTTP_ADDR: not an address: {address:?}")))?;
        return bench_runner::target::raw_echo::serve_http(address).await;
    }
    let nats = async_nats::connect(options.url()).await.map_err(BenchError::nats)?;
    let client = natsrpc::Client::new(nats.clone());
    let bodies = if options.order { Bodies::Orders(Arc::new(Orders::load()?)) } else { Bodies::Echo };
    println!(
        "echo-vs-raw: {} rounds x {:?} (+{:?} warm-up), {} in flight, {} ({}-byte body)",
        options.rounds,
        options.duration,
        options.warmup,
        options.concurrency,
        if options.order { "ecommerce.create_order" } else { "echo" },
        bodies.next().len()
    );

    let mut results = Vec::new();
    for round in 1..=options.rounds {
        for target in
            Target::ALL.into_iter().filter(|t| options.only.as_deref().is_none_or(|o| o == t.name()))
        {
            let mut server = spawn_server(target, &options)?;
            let outcome = measure(target, round, &options, &bodies, &nats, &client, server.id()).await;
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
        let body = serde_json::to_vec_pretty(&results).map_err(BenchError::json(path))?;
        std::fs::write(path, body).map_err(BenchError::io(path))?;
    }
    Ok(())
}

async fn measure(
    target: Target,
    round: usize,
    options: &Options,
    bodies: &Bodies,
    nats: &async_nats::Client,
    client: &natsrpc::Client,
    server_pid: u32,
) -> Result<Measurement, BenchError> {
    let subject = match (target, bodies) {
        (Target::Raw, _) => RAW_SUBJECT,
        (_, Bodies::Echo) => "echo.echo",
        (_, Bodies::Orders(_)) => "ecommerce.create_order",
    };
    wait_until_ready(nats, subject, bodies).await?;
    let brokers = pids_named("nats-server");
    let (server_cpu, broker_cpu, generator_cpu) =
        (CpuMeter::start(&[server_pid]), CpuMeter::start(&brokers), CpuMeter::start(&[std::process::id()]));
    let result: LoadResult = match target {
        Target::Raw | Target::Framework => {
            let (nats, bodies) = (nats.clone(), bodies.clone());
            closed_loop::run(options.concurrency, options.warmup, options.duration, move || {
                let (nats, body) = (nats.clone(), bodies.next());
                async move {
                    // An error reply is a reply, not a success.
                    nats.request(subject, body)
                        .await
                        .is_ok_and(|reply| natsrpc::headers::reply_status(reply.headers.as_ref()) == 200)
                }
            })
            .await
        }
        Target::FrameworkClient if options.order => {
            let (client, Bodies::Orders(orders)) = (client.clone(), bodies.clone()) else {
                return Err(BenchError::Usage("--order without orders".into()));
            };
            closed_loop::run(options.concurrency, options.warmup, options.duration, move || {
                let (client, request) = (client.clone(), orders.typed());
                async move { client.call(&request).await.is_ok() }
            })
            .await
        }
        Target::FrameworkClient => {
            let request: Checkout =
                serde_json::from_str(PAYLOAD).map_err(BenchError::json("the echo payload"))?;
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
    let ran = |target: &Target| results.iter().any(|m| m.target == target.name());
    for target in Target::ALL.into_iter().filter(ran) {
        let (tput, lo, hi) = median(target, |m| m.throughput);
        let (p50, _, _) = median(target, |m| m.p50_us as f64);
        let (p99, _, _) = median(target, |m| m.p99_us as f64);
        let (cpu, _, _) = median(target, |m| m.server_cpu_us_per_request);
        println!("| {} | {tput:.0} ({lo:.0}..{hi:.0}) | {p50:.0} | {p99:.0} | {cpu:.1} |", target.name());
    }
    // Ratios per round (same round = same machine conditions), then their median.
    let ratio_to = |target: Target, base: Target, pick: fn(&Measurement) -> f64| -> (f64, f64, f64) {
        let mut values: Vec<f64> = results
            .iter()
            .filter(|m| m.target == target.name())
            .filter_map(|m| {
                let base = results.iter().find(|r| r.target == base.name() && r.round == m.round)?;
                Some(pick(m) / pick(base))
            })
            .collect();
        values.sort_by(f64::total_cmp);
        let mid = values.get(values.len() / 2).copied().unwrap_or(f64::NAN);
        (mid, values.first().copied().unwrap_or(f64::NAN), values.last().copied().unwrap_or(f64::NAN))
    };
    println!();
    let pairs = [
        (Target::Framework, Target::Raw),
        (Target::FrameworkClient, Target::Raw),
        (Target::FrameworkClient, Target::Framework),
    ];
    // Only the pairs that both ran (`--only` runs one target).
    for (target, base) in pairs.into_iter().filter(|(target, base)| ran(target) && ran(base)) {
        let (t, tlo, thi) = ratio_to(target, base, |m| m.throughput);
        let (l, llo, lhi) = ratio_to(target, base, |m| m.p50_us as f64);
        let (c, clo, chi) = ratio_to(target, base, |m| m.server_cpu_us_per_request);
        println!(
            "{} / {}: throughput {t:.3}x ({tlo:.3}..{thi:.3}), median latency {l:.3}x ({llo:.3}..{lhi:.3}), server CPU {c:.3}x ({clo:.3}..{chi:.3})",
            target.name(),
            base.name()
        );
    }
}

async fn wait_until_ready(
    nats: &async_nats::Client,
    subject: &'static str,
    bodies: &Bodies,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if nats.request(subject, bodies.next()).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::Process(format!("nothing answered on {subject} within 15 s")))
}

fn spawn_server(target: Target, options: &Options) -> Result<Child, BenchError> {
    let url = options.url();
    let wrap: Vec<&str> = options.wrap.as_deref().unwrap_or_default().split_whitespace().collect();
    let exe = std::env::current_exe().map_err(BenchError::program("echo-vs-raw, finding its own path"))?;
    let beside =
        |path: &[&str]| exe.parent().map(|dir| path.iter().fold(dir.to_path_buf(), |p, s| p.join(s)));
    let (program, args) = match target {
        Target::Raw => (exe.clone(), vec!["--serve-raw".to_string()]),
        Target::Framework | Target::FrameworkClient => {
            let (variable, path, build) = if options.order {
                ("ECOMMERCE_BIN", beside(&["ecommerce"]), "cargo build --release -p ecommerce")
            } else {
                ("ECHO_BIN", beside(&["examples", "echo"]), "cargo build --release -p natsrpc --example echo")
            };
            let server = std::env::var_os(variable).map(PathBuf::from).or(path).unwrap_or_default();
            if !server.is_file() {
                return Err(BenchError::Process(format!(
                    "{} not found: build it with `{build}`",
                    server.display()
                )));
            }
            (server, Vec::new())
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
    if options.order {
        // Stock for any number of orders: an order refused for want of stock is not the path measured.
        command.env("ECOMMERCE_STOCK", "1000000000000000");
    }
    command
        .args(args)
        .env("NATS_URL", url)
        // As the benchmark's stacks: no transparent huge pages for mimalloc on any host.
        .env("MIMALLOC_ALLOW_THP", "0")
        // The benchmark measures the framework, not log formatting.
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(BenchError::program(format!("the {} server", target.name())))
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
