//! A stack on brokers of its own: for a scenario that kills, stalls or cuts off a broker, which
//! must never be the shared one that other stacks, tests or people use.
//!
//! Each broker of the stack's `brokers:` becomes a process of the stack, started first on a free
//! port with its data in a folder of the measurement's, and durable as a deployment would run it:
//! nats-server with JetStream on disk, Redis with its append-only file (written before each
//! answer unless a slow sync makes Redis postpone it, for up to 2 s: a killed Redis keeps what it
//! acknowledged, short of that), RabbitMQ with its own node. Killed and
//! started again with the same command, each finds its data where it left it. The stack's
//! processes are pointed at them (`NATS_URL`, `REDIS_URL`, `AMQP_URL`), through a proxy of the
//! runner's ([`crate::system::proxy`]) when the scenario cuts connections; the runner's own
//! connections (the stack's `url`) go to them directly.
//!
//! A stack with `nats_cluster: N` always gets its NATS this way, as N servers (`nats-1`...) with
//! routes to each other and JetStream, whatever the scenario; its processes get every server in
//! `NATS_URL` and `NATS_STREAM_REPLICAS=3`, and its `url` becomes their list.
//!
//! A scenario that archives gets a PostgreSQL of the stack's own too (`postgres`, a cluster made
//! for the measurement, fsync on), whose address the processes get as `ARCHIVE_URL`; with no
//! outages, it is the only private component, and the stack keeps the shared brokers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::BenchError;
use crate::config::{ProcessSpec, StackSpec};
use crate::system::proxy::Proxy;

/// The RabbitMQ server script Debian installs; `RABBITMQ_SERVER_BIN` names another.
const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// The role of a stack's private PostgreSQL.
pub const POSTGRES: &str = "postgres";

/// Which of a stack's components the runner starts for a measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Private {
    /// Its brokers (for outages).
    pub brokers: bool,
    /// A PostgreSQL for its archive.
    pub database: bool,
    /// A proxy in front of each of them (for cuts).
    pub proxied: bool,
}

/// A stack's copy on brokers of its own, and the folder their data is in (removed when dropped).
#[derive(Debug)]
pub struct OnPrivateBrokers {
    /// The copy: the private components first among its processes, each named by what it is
    /// (`nats`, `redis`, `rabbitmq`, `postgres`).
    pub spec: StackSpec,
    /// The proxy in front of each, by its role, when asked for.
    pub proxies: BTreeMap<String, Proxy>,
    /// Where the runner reaches the archive's database (directly), when there is one.
    pub database_url: Option<String>,
    /// Whether the brokers are private (the shared ones are then untouched).
    pub brokers: bool,
    dir: PathBuf,
}

impl Drop for OnPrivateBrokers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A copy of `spec` whose brokers (and database) are processes of its own, as `private` asks,
/// their data under `dir` (made here, removed with the answer), with a proxy in front of each
/// when `private.proxied`. A stack that starts its brokers itself already (a secured variant)
/// cannot have them made private: its brokers are its own, but not set up to be restarted with
/// their data.
pub async fn on_private_brokers(
    name: &str,
    spec: &StackSpec,
    dir: &Path,
    private: Private,
) -> Result<OnPrivateBrokers, BenchError> {
    if private.brokers && spec.processes.iter().any(|p| p.listens.is_some()) {
        return Err(BenchError::Config(format!(
            "{name} starts brokers of its own: outages run on the stacks whose brokers the runner can start privately"
        )));
    }
    std::fs::create_dir_all(dir).map_err(BenchError::io(dir))?;
    let mut copy = OnPrivateBrokers {
        spec: spec.clone(),
        proxies: BTreeMap::new(),
        database_url: None,
        brokers: private.brokers,
        dir: dir.to_path_buf(),
    };
    let mut env = BTreeMap::new();
    let mut brokers = Vec::new();
    let mut components: Vec<String> = if private.brokers {
        spec.brokers.clone()
    } else if spec.nats_cluster.is_some() {
        // A cluster is always the runner's: the shared server is one.
        vec!["nats".to_string()]
    } else {
        Vec::new()
    };
    if let Some(servers) = spec.nats_cluster {
        components.retain(|broker| broker != "nats");
        if private.proxied {
            return Err(BenchError::Config(format!(
                "{name}: connections to a NATS cluster are not cut (each server would need a proxy)"
            )));
        }
        let (nodes, servers) = nats_cluster(servers, dir)?;
        copy.spec.url = servers.clone();
        env.insert("NATS_URL".to_string(), servers);
        env.insert(natsrpc::events::STREAM_REPLICAS_VARIABLE.to_string(), "3".to_string());
        brokers.extend(nodes);
    }
    if private.database {
        components.push(POSTGRES.to_string());
        copy.spec.brokers.push(POSTGRES.to_string());
    }
    for broker in &components {
        let port = free_port()?;
        let data = dir.join(broker);
        std::fs::create_dir_all(&data).map_err(BenchError::io(&data))?;
        let address = format!("127.0.0.1:{port}");
        // Where the stack's processes connect: the broker, or a proxy in front of it.
        let reached = if private.proxied {
            let proxy = Proxy::start(address.clone()).await?;
            let reached = proxy.address();
            copy.proxies.insert(broker.clone(), proxy);
            reached
        } else {
            address.clone()
        };
        let (command, process_env) = match broker.as_str() {
            "nats" => {
                if spec.transport == crate::config::Transport::Nats {
                    copy.spec.url = format!("nats://{address}");
                }
                env.insert("NATS_URL".to_string(), format!("nats://{reached}"));
                let (port, data) = (port.to_string(), path_text(&data));
                (
                    strings(&["nats-server", "-a", "127.0.0.1", "-p", &port, "-js", "-sd", &data]),
                    BTreeMap::new(),
                )
            }
            "redis" => {
                env.insert("REDIS_URL".to_string(), format!("redis://{reached}"));
                let mut command =
                    strings(&["redis-server", "--bind", "127.0.0.1", "--port", &port.to_string()]);
                // Written to the file before each answer (synced each second): a killed process
                // keeps the writes it acknowledged; no snapshots to fork for.
                command.extend(strings(&["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]));
                command.extend(["--dir".to_string(), path_text(&data)]);
                (command, BTreeMap::new())
            }
            "rabbitmq" => {
                env.insert("AMQP_URL".to_string(), format!("amqp://bench:bench@{reached}/%2f"));
                rabbitmq(port, &data)?
            }
            POSTGRES => {
                let postgres = |error| BenchError::Process(format!("{name}: a private PostgreSQL: {error}"));
                archive::server::init(&data).map_err(postgres)?;
                copy.database_url = Some(archive::server::url_at(&address));
                env.insert("ARCHIVE_URL".to_string(), archive::server::url_at(&reached));
                (archive::server::command(&data, port).map_err(postgres)?, BTreeMap::new())
            }
            other => return Err(BenchError::Config(format!("{name}: no private {other} can be started"))),
        };
        brokers.push(ProcessSpec {
            listens: Some(address),
            env: process_env,
            ..ProcessSpec::new(broker.clone(), command)
        });
    }
    for process in &mut copy.spec.processes {
        // Whatever broker the config names, never the shared one.
        process.env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    brokers.append(&mut copy.spec.processes);
    copy.spec.processes = brokers;
    Ok(copy)
}

/// A NATS cluster of `servers` nats-servers (`nats-1`...), each with JetStream (its data under
/// `dir`) and a route to every other: their processes, and their client URLs as one
/// comma-separated list. Each server's name is its role, so that JetStream's answers (a stream's
/// leader) name the process.
fn nats_cluster(servers: u32, dir: &Path) -> Result<(Vec<ProcessSpec>, String), BenchError> {
    let mut ports = Vec::new();
    while ports.len() < 2 * servers as usize {
        let port = free_port()?;
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    let (clients, routes) = ports.split_at(servers as usize);
    let route = |port: &u16| format!("nats://127.0.0.1:{port}");
    let mut nodes = Vec::new();
    for (i, (client, cluster)) in clients.iter().zip(routes).enumerate() {
        let role = format!("nats-{}", i + 1);
        let data = dir.join(&role);
        std::fs::create_dir_all(&data).map_err(BenchError::io(&data))?;
        let others: Vec<String> = routes.iter().filter(|port| *port != cluster).map(route).collect();
        let (client, data) = (client.to_string(), path_text(&data));
        let mut command =
            strings(&["nats-server", "-a", "127.0.0.1", "-p", &client, "-n", &role, "-js", "-sd", &data]);
        command.extend(strings(&["--cluster_name", "natsrpc-bench", "--cluster", &route(cluster)]));
        command.extend(["--routes".to_string(), others.join(",")]);
        nodes.push(ProcessSpec {
            listens: Some(format!("127.0.0.1:{client}")),
            ..ProcessSpec::new(role, command)
        });
    }
    let urls: Vec<String> = clients.iter().map(|port| format!("nats://127.0.0.1:{port}")).collect();
    Ok((nodes, urls.join(",")))
}

/// A RabbitMQ node of its own with one user `bench` (no guest) owning `/`, no plugins, its files
/// in `dir`: the command and its environment.
fn rabbitmq(port: u16, dir: &Path) -> Result<(Vec<String>, BTreeMap<String, String>), BenchError> {
    let config = [
        format!("listeners.tcp.default = 127.0.0.1:{port}"),
        "default_user = bench".into(),
        "default_pass = bench".into(),
        "default_permissions.configure = .*".into(),
        "default_permissions.read = .*".into(),
        "default_permissions.write = .*".into(),
        "loopback_users = none".into(),
    ];
    let file = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(BenchError::io(&path))
    };
    file("rabbitmq.conf", config.join("\n") + "\n")?;
    file("enabled_plugins", "[].\n".into())?;
    let dist_port = loop {
        let candidate = free_port()?;
        if candidate != port {
            break candidate;
        }
    };
    let path = |name: &str| path_text(&dir.join(name));
    let env: BTreeMap<String, String> = [
        // The script then execs the Erlang VM in its own process: the PID the runner kills is the
        // node's.
        ("RUNNING_UNDER_SYSTEMD", "1".to_string()),
        ("HOME", path_text(dir)),
        ("RABBITMQ_NODENAME", format!("natsrpc-bench-{port}@localhost")),
        ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
        ("RABBITMQ_NODE_PORT", port.to_string()),
        ("RABBITMQ_DIST_PORT", dist_port.to_string()),
        ("RABBITMQ_CONFIG_FILE", path("rabbitmq")),
        ("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins")),
        ("RABBITMQ_MNESIA_BASE", path("mnesia")),
        ("RABBITMQ_LOG_BASE", path("log")),
        ("RABBITMQ_PLUGINS_EXPAND_DIR", path("plugins")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let server = std::env::var("RABBITMQ_SERVER_BIN").unwrap_or_else(|_| RABBITMQ_SERVER.to_string());
    Ok((vec![server], env))
}

/// A port nothing listens on now, for a process of the runner's to take.
pub fn free_port() -> Result<u16, BenchError> {
    natsrpc::testing::free_port().map_err(BenchError::program("a free port for a private broker"))
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BenchmarkConfig;

    #[tokio::test]
    async fn each_broker_becomes_a_process_of_the_stack_and_its_processes_are_pointed_at_it() {
        let text = r#"stacks:
  nats-redis:
    description: d
    transport: nats
    url: nats://127.0.0.1:4222
    brokers: [nats, redis]
    processes: [{name: services, command: [nats-services], env: {STORE: redis}}]
  http-rabbitmq:
    description: d
    transport: http
    url: http://127.0.0.1:8081
    brokers: [rabbitmq, redis]
    processes: [{name: worker, command: [http-rabbitmq, worker], instances: 2}, {name: gateway, command: [http-rabbitmq, gateway]}]
"#;
        let config = BenchmarkConfig::parse(text, "b.yaml").unwrap();
        let dir = std::env::temp_dir().join(format!("natsrpc-private-brokers-{}", nuid::next()));
        let brokers = Private { brokers: true, ..Private::default() };
        let copy = on_private_brokers("nats-redis", &config.stacks["nats-redis"], &dir.join("a"), brokers)
            .await
            .unwrap();
        let roles: Vec<&str> = copy.spec.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(roles, ["nats", "redis", "services"]);
        assert_ne!(copy.spec.url, "nats://127.0.0.1:4222", "the stack's url is its private server's");
        let redis = &copy.spec.processes[1];
        assert!(redis.command.contains(&"--appendonly".to_string()) && redis.listens.is_some());
        let services = &copy.spec.processes[2];
        assert_eq!(
            services.env["REDIS_URL"],
            format!("redis://{}", redis.listens.as_deref().unwrap()),
            "the services use the private Redis"
        );
        assert_eq!(services.env["STORE"], "redis");
        assert!(dir.join("a/nats").is_dir() && dir.join("a/redis").is_dir());

        let cut = Private { brokers: true, database: false, proxied: true };
        let copy = on_private_brokers("http-rabbitmq", &config.stacks["http-rabbitmq"], &dir.join("b"), cut)
            .await
            .unwrap();
        let rabbit = &copy.spec.processes[0];
        assert_eq!(rabbit.env["RUNNING_UNDER_SYSTEMD"], "1");
        assert!(dir.join("b/rabbitmq/rabbitmq.conf").is_file());
        assert!(
            copy.spec.processes[2..]
                .iter()
                .all(|p| p.env["AMQP_URL"].starts_with("amqp://bench:bench@127.0.0.1:"))
        );
        assert_eq!(copy.spec.url, "http://127.0.0.1:8081", "an HTTP stack keeps its own address");
        drop(copy);
        assert!(!dir.join("b").exists(), "its data goes with it");

        // The archive's database alone: the stack keeps the shared brokers.
        let database = Private { database: true, ..Private::default() };
        let copy = on_private_brokers("nats-redis", &config.stacks["nats-redis"], &dir.join("c"), database)
            .await
            .unwrap();
        let roles: Vec<&str> = copy.spec.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(roles, ["postgres", "services"]);
        assert_eq!(copy.spec.url, "nats://127.0.0.1:4222", "the shared NATS");
        let services = &copy.spec.processes[1];
        assert!(!services.env.contains_key("REDIS_URL"), "the shared Redis");
        let database = copy.database_url.clone().unwrap();
        assert_eq!(services.env["ARCHIVE_URL"], database);
        assert!(dir.join("c/postgres/PG_VERSION").is_file(), "a cluster made for it");
        drop(copy);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
