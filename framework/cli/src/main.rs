//! `natsrpc`: list, inspect and call NATS services from the command line (see the crate's docs,
//! and `natsrpc --help`).

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use natsrpc_cli::discovery::{self, Info};
use natsrpc_cli::{CliError, schema, show};
use serde_json::Value;

const AFTER_HELP: &str = "\
Examples:
  natsrpc ls
  natsrpc info ecommerce
  natsrpc stats ecommerce --json
  natsrpc schema ecommerce create_order
  natsrpc call ecommerce.create_order data/test-payloads/ecommerce/create_order.valid.json
  natsrpc compat data/contracts/ecommerce.json ecommerce   the running version against the release
  echo '{\"hello\": \"world\"}' | natsrpc call echo.echo

The server and credentials come from NATS_URL, NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY,
NATS_CREDS, NATS_CA, NATS_CERT/NATS_KEY (as every natsrpc service reads them); --server wins.

Exit codes:
  0  done (call: the service answered a success)
  1  call: the service answered an error, or the request breaks the endpoint's schema (not sent);
     compat: a breaking change without a new major version
  2  bad arguments, or a file that cannot be read (or is no $SRV.INFO answer)
  3  no answer: NATS unreachable, no such service, or a timeout";

/// List, inspect and call natsrpc services (and any NATS Services API service) on a NATS server.
#[derive(Debug, clap::Parser)]
#[command(name = "natsrpc", version, after_help = AFTER_HELP)]
struct Cli {
    /// The NATS server (default: NATS_URL, else nats://127.0.0.1:4222).
    #[arg(long, short, global = true, value_name = "URL")]
    server: Option<String>,
    /// How long to wait for answers, in seconds.
    #[arg(long, global = true, value_name = "SECS", default_value = "1", value_parser = seconds)]
    timeout: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The services that answer, one line each.
    Ls {
        /// Their `$SRV.INFO` answers, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A service's endpoints, subjects and schemas.
    Info {
        /// The service.
        name: String,
        /// Its instances' `$SRV.INFO` answers, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A service's figures per instance and endpoint: requests, errors, latency, validation.
    Stats {
        /// The service.
        name: String,
        /// Its instances' `$SRV.STATS` answers, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// An endpoint's request JSON Schema (or its response's).
    Schema {
        /// The service.
        name: String,
        /// The endpoint.
        endpoint: String,
        /// The response's schema instead.
        #[arg(long)]
        response: bool,
    },
    /// Whether a new version keeps an old one's contract: every change that breaks the old
    /// version's callers (allowed only with a new major version).
    Compat {
        /// The old version: a file of its `$SRV.INFO` (as `natsrpc info NAME --json` prints), or
        /// the name of a running service to ask.
        old: String,
        /// The new version, the same way.
        new: String,
    },
    /// Send a request (checked against its endpoint's schema first) and print the answer.
    Call {
        /// Where it goes, such as ecommerce.create_order.
        subject: String,
        /// The JSON body: a file, or `-` (the default) for standard input.
        #[arg(default_value = "-")]
        body: String,
        /// Send it unchecked (to see what the service itself says of a broken request).
        #[arg(long)]
        no_check: bool,
    },
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|secs| *secs > 0.0)
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("not a number of seconds above 0: {text:?}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Answered) => ExitCode::from(1),
        Err(error) => {
            eprintln!("natsrpc: {error}");
            ExitCode::from(error.status())
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let mut config = natsrpc::NatsConfig::from_env()?.with_name("natsrpc-cli");
    if let Some(server) = cli.server {
        config.servers = server.split(',').map(|s| s.trim().to_string()).collect();
    }
    let wait = cli.timeout;
    if let Command::Compat { old, new } = &cli.command {
        return compat(&config, old, new, wait).await;
    }
    let nats = config.connect().await?;
    match cli.command {
        Command::Ls { json } => {
            let infos = discovery::infos(&nats, None, wait).await?;
            if json {
                print_json(&discovery::gather(&nats, "$SRV.INFO", wait).await?);
            } else if infos.is_empty() {
                return Err(CliError::NoAnswer("no service answered $SRV.INFO".into()));
            } else {
                print!("{}", show::services(&infos));
            }
        }
        Command::Info { name, json } => {
            let infos = service(&nats, &name, wait).await?;
            if json {
                print_json(&discovery::gather(&nats, &format!("$SRV.INFO.{name}"), wait).await?);
            } else {
                print!("{}", show::info(&infos));
            }
        }
        Command::Stats { name, json } => {
            checked_name(&name)?;
            let answers = discovery::gather(&nats, &format!("$SRV.STATS.{name}"), wait).await?;
            if answers.is_empty() {
                return Err(CliError::NoAnswer(format!("no service {name:?} answered")));
            }
            if json {
                print_json(&answers);
            } else {
                let stats: Vec<natsrpc::ServiceStats> =
                    answers.into_iter().filter_map(|a| serde_json::from_value(a).ok()).collect();
                print!("{}", show::stats(&stats));
            }
        }
        Command::Schema { name, endpoint, response } => {
            let infos = service(&nats, &name, wait).await?;
            let found = infos[0].endpoints.iter().find(|e| e.name == endpoint).ok_or_else(|| {
                let names: Vec<&str> = infos[0].endpoints.iter().map(|e| e.name.as_str()).collect();
                let names = natsrpc::escape::escape(&names.join(", "), 400).into_owned();
                CliError::NoAnswer(format!("{name} has no endpoint {endpoint:?} (it has {names})"))
            })?;
            let schema = if response { found.response_schema() } else { found.request_schema() };
            let schema =
                schema.ok_or_else(|| CliError::NoAnswer(format!("{name}.{endpoint} serves no schema")))?;
            print_json(&schema);
        }
        Command::Call { subject, body, no_check } => call(&nats, &subject, &body, no_check, wait).await?,
        Command::Compat { .. } => {}
    }
    Ok(())
}

/// Compares two versions' contracts (files, or running services asked over NATS only then).
async fn compat(config: &natsrpc::NatsConfig, old: &str, new: &str, wait: Duration) -> Result<(), CliError> {
    let mut nats = None;
    let mut contracts = Vec::new();
    for source in [old, new] {
        let path = PathBuf::from(source);
        if path.is_file() {
            let text = std::fs::read(&path)
                .map_err(|source| CliError::Read { path: path.display().to_string(), source })?;
            let info = serde_json::from_slice::<Value>(&text)
                .ok()
                .filter(|info| {
                    let one = info.as_array().and_then(|all| all.first()).unwrap_or(info);
                    one.get("endpoints").is_some_and(Value::is_array)
                })
                .ok_or_else(|| {
                    CliError::Input(format!("{}: not a $SRV.INFO answer (no endpoints)", path.display()))
                })?;
            contracts.push(info);
            continue;
        }
        checked_name(source)?;
        if nats.is_none() {
            nats = Some(config.connect().await?);
        }
        let Some(nats) = &nats else { continue };
        let answers = discovery::gather(nats, &format!("$SRV.INFO.{source}"), wait).await?;
        let info = answers.into_iter().next();
        contracts.push(info.ok_or_else(|| CliError::NoAnswer(format!("no file and no service {source:?}")))?);
    }
    let [old, new] = contracts.as_slice() else {
        return Err(CliError::NoAnswer("two versions to compare".into()));
    };
    match natsrpc::compat::check(old, new) {
        Ok(breaks) if breaks.is_empty() => {
            println!("compatible: nothing the old version's callers do breaks")
        }
        Ok(breaks) => {
            println!("{} breaking change(s), announced by the new major version:", breaks.len());
            for change in breaks {
                println!("  {}", natsrpc::escape::escape(&change.to_string(), 400));
            }
        }
        Err(incompatible) => {
            let shown = |text: &str| natsrpc::escape::escape(text, 400).into_owned();
            for change in &incompatible.breaks {
                eprintln!("  {}", shown(&change.to_string()));
            }
            return Err(CliError::Refused(format!(
                "{} breaking change(s) from {} to {} without a new major version",
                incompatible.breaks.len(),
                shown(&incompatible.old),
                shown(&incompatible.new)
            )));
        }
    }
    Ok(())
}

/// Every instance's INFO of `name`, at least one.
async fn service(nats: &async_nats::Client, name: &str, wait: Duration) -> Result<Vec<Info>, CliError> {
    checked_name(name)?;
    let infos = discovery::infos(nats, Some(name), wait).await?;
    if infos.is_empty() {
        return Err(CliError::NoAnswer(format!("no service {name:?} answered")));
    }
    Ok(infos)
}

fn checked_name(name: &str) -> Result<(), CliError> {
    if discovery::is_service_name(name) {
        Ok(())
    } else {
        Err(CliError::Refused(format!("{name:?} is not a service's name (letters, digits, _ and -)")))
    }
}

/// Checks `body` against the endpoint's schema (unless `no_check`), sends it, and prints the
/// answer; an error answer is an error.
async fn call(
    nats: &async_nats::Client,
    subject: &str,
    body: &str,
    no_check: bool,
    wait: Duration,
) -> Result<(), CliError> {
    let text = read_body(body)?;
    if subject.is_empty()
        || subject.chars().any(|c| matches!(c, '*' | '>') || c.is_whitespace() || c.is_control())
    {
        return Err(CliError::Refused(format!(
            "{subject:?}: a subject to send to has no wildcards, spaces or control characters"
        )));
    }
    if !no_check {
        let request: Value = serde_json::from_slice(&text)
            .map_err(|e| CliError::Refused(format!("the request is not JSON: {e} (not sent)")))?;
        match discovery::endpoint_of(nats, subject, wait).await?.and_then(|e| e.request_schema()) {
            Some(schema) => {
                let broken = schema::check(&schema, &request);
                if !broken.is_empty() {
                    // Paths and messages carry the schema's own text (names, patterns).
                    let shown = |text: &str| natsrpc::escape::escape(text, 200).into_owned();
                    for violation in &broken {
                        let at = if violation.path.is_empty() {
                            "the request".into()
                        } else {
                            shown(&violation.path)
                        };
                        eprintln!("  {at}: {}", shown(&violation.message));
                    }
                    return Err(CliError::Refused(format!(
                        "the request breaks {subject}'s schema in {} place(s): not sent (--no-check sends it anyway)",
                        broken.len()
                    )));
                }
            }
            None => eprintln!("natsrpc: {subject} serves no request schema: sent unchecked"),
        }
    }
    let asked = nats.request(subject.to_string(), text.into());
    let reply = match tokio::time::timeout(wait.max(Duration::from_secs(5)), asked).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => return Err(CliError::NoAnswer(format!("{subject}: {error}"))),
        Err(_) => return Err(CliError::NoAnswer(format!("{subject}: no answer in time"))),
    };
    match serde_json::from_slice::<Value>(&reply.payload) {
        Ok(answer) => {
            print_json(&answer);
            let failed = reply.headers.as_ref().is_some_and(|h| h.get("Nats-Service-Error-Code").is_some())
                || answer.get("ok") == Some(&Value::Bool(false));
            if failed { Err(CliError::Answered) } else { Ok(()) }
        }
        // Not JSON (MessagePack, text): shown escaped, as it came.
        Err(_) => {
            println!("{}", natsrpc::escape::escape(&String::from_utf8_lossy(&reply.payload), 64 * 1024));
            Ok(())
        }
    }
}

fn read_body(body: &str) -> Result<Vec<u8>, CliError> {
    if body == "-" {
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .map_err(|source| CliError::Read { path: "standard input".into(), source })?;
        return Ok(text);
    }
    std::fs::read(PathBuf::from(body)).map_err(|source| CliError::Read { path: body.to_string(), source })
}

fn print_json(value: &impl serde::Serialize) {
    // Values read from JSON write back as JSON.
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}
