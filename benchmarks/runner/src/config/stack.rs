//! A stack (`stacks:`): its transport, where it listens, its processes, and how to connect to
//! it; values may name `${VARIABLES}` of the environment, expanded once when the file is read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::BenchError;

/// How a stack's clients reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// NATS request/reply on `{service}.{endpoint}`.
    Nats,
    /// HTTP `POST /{service}/{endpoint}`.
    Http,
}

/// One stack: what it is, where it listens, and its processes. Its `{:?}` leaves out every value
/// that `${NAME}` may have filled with a secret (see [`StackSpec::nats`]).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    /// One line for the report.
    #[serde(default)]
    pub description: String,
    /// How clients reach it.
    pub transport: Transport,
    /// `nats://host:port` or `http://host:port`.
    pub url: String,
    /// For an echo control: the subject (NATS) or path (HTTP, `/...`) it answers on, instead of the
    /// three services.
    #[serde(default)]
    pub echo_subject: Option<String>,
    /// For a validation-off control: the stack it copies, whose services it runs built without
    /// validation (natsrpc's `unvalidated-control` feature, `target/release/unvalidated/`). The
    /// report sets the two side by side: what validation costs end to end. The runner refuses a
    /// control whose services validate, and a stack whose services do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unvalidated_control_of: Option<String>,
    /// For a NATS stack on a server that wants credentials or TLS: natsrpc's variables
    /// (`NATS_USER`, `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_NKEY`, `NATS_CREDS`, `NATS_CA`, `NATS_CERT`,
    /// `NATS_KEY`, `NATS_TLS_FIRST`), given to the stack's processes and used by the runner's own
    /// connections. `${NAME}` in a value is replaced by the runner's environment variable `NAME` when
    /// the file is loaded, so that no secret has to sit in the file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nats: BTreeMap<String, String>,
    /// For an `https://` stack: a PEM file of the CA that signed its certificate (`${NAME}` expanded
    /// as in `nats`); the system's CAs when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Whether it names the run's own certificates or password (`${BENCH_TLS_CA}`...): they are
    /// written before it starts, and its processes get them. Found when the file is read.
    #[serde(skip)]
    pub uses_run_secrets: bool,
    /// For a secured variant (TLS and credentials, on brokers of its own that its processes
    /// start): the plain stack it copies. The report sets the two side by side: what security
    /// costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secured_variant_of: Option<String>,
    /// The brokers it uses (`nats`, `redis`, `rabbitmq`), whose CPU and memory count as its own.
    #[serde(default)]
    pub brokers: Vec<String>,
    /// For a NATS stack on a cluster: how many nats-servers (3 to 7) the runner starts for it,
    /// routed to each other, with JetStream, on free ports and data of the measurement's own. Its
    /// `url` is then theirs (the config's is not used), its processes get them all in `NATS_URL`,
    /// and the outage target `leader` names the server leading its events' stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_cluster: Option<u32>,
    /// The services it hosts, by name: the runner waits for each to answer before measuring,
    /// and reads each one's stats (`$SRV.STATS.{name}`). By default the suite's three
    /// (ecommerce, analytics, fileproc); `[]` for services that are not natsrpc's, which are
    /// neither waited for nor asked for stats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    /// Started in this order, stopped in the reverse order. None for a stack that already runs
    /// elsewhere (an external target): it is measured as it is, and what the runner cannot see
    /// (its processes' CPU and memory) is reported missing.
    #[serde(default)]
    pub processes: Vec<ProcessSpec>,
}

/// One kind of process of a stack.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Its role (`api`, `worker`...), for logs and the report.
    pub name: String,
    /// A binary of this workspace (or, failing that, a program on the `PATH`, such as a broker
    /// the stack starts itself) and its arguments; `${NAME}` is expanded as in `nats`.
    pub command: Vec<String>,
    /// `host:port` it listens on, for a broker the stack starts itself: the port must be free
    /// before the stack starts, and the next process starts once it accepts connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listens: Option<String>,
    /// How many to run.
    #[serde(default = "one")]
    pub instances: u32,
    /// For an HTTP stack: whether it answers the stack's `url` itself (the API, the gateway), as
    /// opposed to working behind it (RabbitMQ's workers). With more than one instance (or in a
    /// scale-out), the runner gives each instance an address of its own (`HTTP_ADDR`) and puts
    /// HAProxy on the `url`, round-robin across them, a connection refused retried on another.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serves: bool,
    /// Whether the runner puts its load balancer in front even of one instance (a scale-out, so
    /// that every count pays the same hop).
    #[serde(skip)]
    pub balanced: bool,
    /// The CPUs it runs on (`taskset` list: `2`, `2-3`, `2,4`); by default every core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// Its environment, on top of the stack's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

impl ProcessSpec {
    /// One instance of `command` (a binary and its arguments) in the role `name`, with nothing
    /// else set.
    pub fn new(name: impl Into<String>, command: Vec<String>) -> Self {
        Self {
            name: name.into(),
            command,
            listens: None,
            instances: 1,
            cpus: None,
            serves: false,
            balanced: false,
            env: BTreeMap::new(),
        }
    }
}

/// Names the settings and leaves their values out: a password from `${NAME}` may be any of them.
impl std::fmt::Debug for StackSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackSpec")
            .field("transport", &self.transport)
            .field("url", &natsrpc::redact_url(&self.url))
            .field("nats", &self.nats.keys().collect::<Vec<_>>())
            .field("processes", &self.processes)
            .finish_non_exhaustive()
    }
}

/// The program and the names of its settings, not its arguments or their values.
impl std::fmt::Debug for ProcessSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSpec")
            .field("name", &self.name)
            .field("program", &self.command.first())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl StackSpec {
    /// A stack of `transport` at `url` with nothing else set: no processes to start, no
    /// credentials, no control. The configuration's stacks come from the file; this is for callers
    /// that reach a stack running already (and for tests).
    pub fn new(transport: Transport, url: impl Into<String>) -> Self {
        Self {
            description: String::new(),
            transport,
            url: url.into(),
            echo_subject: None,
            unvalidated_control_of: None,
            nats: BTreeMap::new(),
            ca: None,
            uses_run_secrets: false,
            secured_variant_of: None,
            brokers: Vec::new(),
            nats_cluster: None,
            services: None,
            processes: Vec::new(),
        }
    }

    /// The services it hosts (see `services`).
    pub fn services(&self) -> Vec<&str> {
        match &self.services {
            Some(services) => services.iter().map(String::as_str).collect(),
            None => stack::SERVICES.to_vec(),
        }
    }

    /// Whether it runs elsewhere: no processes of the runner's, measured as it is.
    pub fn is_external(&self) -> bool {
        self.processes.is_empty()
    }

    /// How the runner and the stack's processes connect to its NATS server: `url` and the `nats`
    /// settings.
    pub fn nats_config(&self) -> Result<natsrpc::NatsConfig, BenchError> {
        natsrpc::NatsConfig::from_lookup(|name| match name {
            "NATS_URL" => Some(self.url.clone()),
            other => self.nats.get(other).cloned(),
        })
        .map_err(BenchError::NatsSettings)
    }

    /// For an `https://` stack, how the runner's clients trust its certificate (`ca`, else the
    /// system's CAs); `None` for plain HTTP.
    pub fn http_tls(&self) -> Result<Option<rustls::ClientConfig>, BenchError> {
        if !self.url.starts_with("https://") {
            return Ok(None);
        }
        let ca = self.ca.as_deref().map(std::path::Path::new);
        Ok(Some(http_api::tls::client_config(ca, "ca")?))
    }

    /// A connection to its NATS server as the runner's own (no request timeout of its own).
    pub async fn connect_nats(&self) -> Result<async_nats::Client, BenchError> {
        self.connect_nats_with(None).await
    }

    /// Its first service process (not a broker): the one an outage's `instance` and a scale-out
    /// name.
    pub fn first_service(&self) -> Option<&ProcessSpec> {
        self.processes.get(self.first_service_index()?)
    }

    /// Where [`StackSpec::first_service`] is among its processes.
    pub fn first_service_index(&self) -> Option<usize> {
        self.processes.iter().position(|p| p.listens.is_none())
    }

    /// For a serving process of an HTTP stack: whether its instances run behind the runner's load
    /// balancer.
    pub fn behind_balancer(&self, process: &ProcessSpec) -> bool {
        self.transport == Transport::Http && process.serves && (process.instances > 1 || process.balanced)
    }

    /// A connection to its NATS server whose requests give up after `request_timeout`.
    pub async fn connect_nats_with(
        &self,
        request_timeout: Option<std::time::Duration>,
    ) -> Result<async_nats::Client, BenchError> {
        let config = self.nats_config()?;
        let options = config.options().await.map_err(BenchError::NatsSettings)?;
        let options = options.request_timeout(request_timeout);
        config.connect_using(options).await.map_err(BenchError::nats)
    }
}

/// Replaces each `${NAME}` in `value` by the environment variable `NAME` (`lookup`); an unset one
/// is an error naming it, never the value around it.
pub fn expand(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, crate::config::Invalid> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| crate::config::Invalid::from("an unclosed ${"))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("${{{name}}} is not a variable name").into());
        }
        let value = lookup(name).ok_or_else(|| format!("${{{name}}} is not set in the environment"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `host:port` of a `scheme://host:port[/...]` URL.
pub fn host_port(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok()).then_some(authority)
}

/// The role of the load balancer the runner puts in front of an HTTP API's instances
/// (`serves`), which no process of the config may take.
pub const BALANCER: &str = "balancer";

/// The brokers a stack may use, by the name the config gives them, and their process names.
pub const BROKERS: &[(&str, &str)] =
    &[("nats", "nats-server"), ("redis", "redis-server"), ("rabbitmq", "beam.smp")];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BenchmarkConfig;

    #[test]
    fn secrets_come_from_the_environment_and_only_known_nats_variables_are_taken() {
        let env = |name: &str| (name == "PASS").then(|| "hunter2".to_string());
        assert_eq!(expand("${PASS}", &env).unwrap(), "hunter2");
        assert_eq!(expand("a-${PASS}-b", &env).unwrap(), "a-hunter2-b");
        assert_eq!(expand("plain", &env).unwrap(), "plain");
        assert!(expand("${NOPE}", &env).unwrap_err().to_string().contains("${NOPE} is not set"));
        assert!(expand("${PASS", &env).unwrap_err().to_string().contains("unclosed"));
        assert!(expand("${a b}", &env).unwrap_err().to_string().contains("not a variable name"));

        let stack = |nats: &str, transport: &str, url: &str| {
            format!(
                "stacks:\n  s:\n    description: d\n    transport: {transport}\n    url: {url}\n    nats: {nats}\n    processes: [{{name: a, command: [b]}}]\n"
            )
        };
        let good =
            stack("{NATS_USER: u, NATS_PASSWORD: p, NATS_CA: /ca.pem}", "nats", "tls://127.0.0.1:4222");
        let config = BenchmarkConfig::parse(&good, "b.yaml").unwrap();
        let nats = config.stacks["s"].nats_config().unwrap();
        assert!(matches!(nats.auth, natsrpc::NatsAuth::UserPassword { .. }) && nats.tls.ca.is_some());
        for (nats, transport, url, says) in [
            ("{NATS_URL: x}", "nats", "nats://127.0.0.1:4222", "stacks.s.nats.NATS_URL"),
            ("{NATS_PASWORD: x}", "nats", "nats://127.0.0.1:4222", "stacks.s.nats.NATS_PASWORD"),
            ("{NATS_USER: u}", "nats", "nats://127.0.0.1:4222", "NATS_USER is set without NATS_PASSWORD"),
            ("{NATS_TOKEN: t}", "http", "http://127.0.0.1:8080", "only for a NATS stack"),
        ] {
            let error =
                BenchmarkConfig::parse(&stack(nats, transport, url), "b.yaml").unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn the_runs_own_secrets_fill_commands_and_settings_and_stay_out_of_debug() {
        let text = r#"stacks:
  plain: {description: d, transport: http, url: "http://127.0.0.1:8080", processes: [{name: api, command: [http-redis]}]}
  s:
    description: d
    transport: http
    url: https://127.0.0.1:8443
    ca: "${BENCH_TLS_CA}"
    secured_variant_of: plain
    processes:
      - {name: broker, command: [redis-server, --requirepass, "${BENCH_SECRET}"], listens: "127.0.0.1:6435"}
      - {name: api, command: [http-redis], env: {REDIS_URL: "rediss://:${BENCH_SECRET}@127.0.0.1:6435"}}
"#;
        let config = BenchmarkConfig::parse(text, "b.yaml").unwrap();
        let secret = crate::config::run_secrets::lookup("BENCH_SECRET").unwrap();
        let spec = &config.stacks["s"];
        assert!(spec.uses_run_secrets && !config.stacks["plain"].uses_run_secrets);
        let ca = std::path::Path::new(spec.ca.as_deref().unwrap());
        assert!(!ca.exists(), "nothing is written until a stack that names them starts");
        crate::config::run_secrets::RunSecrets::get().write_files().unwrap();
        assert_eq!(spec.processes[0].command[2], secret);
        assert!(spec.processes[1].env["REDIS_URL"].contains(&secret));
        assert!(spec.ca.as_deref().is_some_and(|ca| std::path::Path::new(ca).is_file()));
        assert!(spec.http_tls().unwrap().is_some(), "an https:// stack gets a TLS client trusting its ca");
        let shown = format!("{spec:?}");
        assert!(!shown.contains(&secret) && shown.contains("REDIS_URL"), "{shown}");

        for (from, to, says) in [
            ("secured_variant_of: plain", "secured_variant_of: s", "secured_variant_of"),
            ("listens: \"127.0.0.1:6435\"", "listens: localhost", "listens"),
        ] {
            let error = BenchmarkConfig::parse(&text.replace(from, to), "b.yaml").unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
        crate::config::run_secrets::RunSecrets::remove();
    }
}
