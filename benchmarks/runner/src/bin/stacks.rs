//! `stacks`: starts and stops the stacks of `config/benchmark-config.yaml` by hand, for trying
//! them out or pointing another load tool at them. The runner starts its own.
//!
//! ```text
//! stacks list                  the stacks of the config, and which run
//! stacks up NAME...            starts them (ports from the config), waits until ready, leaves them running
//! stacks down [NAME...]        stops them by PID (all that run, by default) and removes their state
//! ```
//! `--config FILE` (default `config/benchmark-config.yaml`); state in `reports/.stacks/`;
//! `stacks --help` for more.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bench_runner::BenchError;
use bench_runner::config::BenchmarkConfig;
use bench_runner::system::stacks::{Detached, RunningStack, StartOptions};

const STATE_DIR: &str = "reports/.stacks";

/// Starts and stops the configuration's stacks by hand, for trying them out or pointing another
/// load tool at them (the benchmark runner starts its own).
#[derive(Debug, clap::Parser)]
#[command(
    name = "stacks",
    version,
    after_help = "Examples:\n  stacks list\n  stacks up nats http-redis\n  curl -s localhost:8080/ecommerce/restock -H 'content-type: application/json' -d '{\"sku\":\"SKU-00001\",\"quantity\":5}'\n  stacks down\n\nState (PIDs, key prefixes) is kept in reports/.stacks/, logs in reports/.stacks/logs/."
)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, value_name = "FILE", default_value = "config/benchmark-config.yaml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The stacks of the configuration, and which run.
    List,
    /// Start stacks (on the configuration's ports), wait until ready, and leave them running.
    Up {
        /// The stacks to start.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Stop stacks by PID (every one that runs, by default) and remove their state.
    Down {
        /// The stacks to stop.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> Result<(), BenchError> {
    let cli = <Cli as clap::Parser>::parse();
    let config = BenchmarkConfig::load(&cli.config)?;
    let state_dir = Path::new(STATE_DIR);
    match cli.command {
        Command::List => {
            for (name, spec) in &config.stacks {
                let running = if state_file(state_dir, name).exists() { "running" } else { "-" };
                println!("{name:<15} {running:<8} {:<24} {}", spec.url, spec.description);
            }
        }
        Command::Up { names } => {
            let log_dir = state_dir.join("logs");
            let options = StartOptions::beside_this_binary(&log_dir)?;
            for name in &names {
                let spec = config.stack(name)?;
                if spec.nats_cluster.is_some() {
                    // Its servers are the runner's, made and removed with each measurement.
                    return Err(BenchError::Config(format!(
                        "{name} runs on a NATS cluster that bench starts for each measurement: `stacks up` starts stacks on the configured brokers"
                    )));
                }
                refuse_clash(state_dir, name, &spec.url)?;
                let stack = RunningStack::start(name, spec, &options).await?;
                let detached = stack.detach();
                let state = state_file(state_dir, name);
                let json = serde_json::to_string_pretty(&detached).map_err(BenchError::json(&state))?;
                write(&state, &json)?;
                let pids: Vec<String> =
                    detached.pids.iter().map(|(role, pid)| format!("{role}={pid}")).collect();
                println!("{name}: ready at {} ({})", spec.url, pids.join(" "));
            }
        }
        Command::Down { names } => {
            let names: Vec<String> = if names.is_empty() { running(state_dir) } else { names };
            for name in names {
                let path = state_file(state_dir, &name);
                let Ok(json) = std::fs::read_to_string(&path) else {
                    println!("{name}: not running");
                    continue;
                };
                let detached: Detached = serde_json::from_str(&json).map_err(BenchError::json(&path))?;
                detached.stop(Duration::from_secs(10)).await?;
                let _ = std::fs::remove_file(&path);
                // The run's certificates, once the last stack that used them is down.
                if let Some(secrets) = &detached.secrets
                    && !running(state_dir).iter().any(|other| uses(state_dir, other, secrets))
                {
                    let _ = std::fs::remove_dir_all(secrets);
                }
                println!("{name}: stopped");
            }
        }
    }
    Ok(())
}

/// Whether the running stack `name` uses the certificates in `secrets`.
fn uses(state_dir: &Path, name: &str, secrets: &Path) -> bool {
    std::fs::read_to_string(state_file(state_dir, name))
        .ok()
        .and_then(|json| serde_json::from_str::<Detached>(&json).ok())
        .is_some_and(|other| other.secrets.as_deref() == Some(secrets))
}

fn state_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

fn running(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Two stacks on one address would take each other's requests.
fn refuse_clash(dir: &Path, name: &str, url: &str) -> Result<(), BenchError> {
    for other in running(dir) {
        let Ok(json) = std::fs::read_to_string(state_file(dir, &other)) else { continue };
        let Ok(detached) = serde_json::from_str::<Detached>(&json) else { continue };
        if other == name || detached.url == url {
            return Err(BenchError::Usage(format!(
                "{other} already runs at {url}; stop it first (stacks down {other})"
            )));
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(BenchError::io(dir))?;
    }
    std::fs::write(path, text).map_err(BenchError::io(path))
}
