//! The stacks of `config/benchmark-config.yaml` as running processes: started with their ports
//! from the config, checked ready before use, stopped by PID (SIGTERM, then SIGKILL after a grace
//! period), and their state in the shared brokers removed.
//!
//! Ready means every hosted service answers a request, through the whole stack: a request for a
//! `__ready` endpoint, which no service has, must come back as the service's own 404
//! `unknown_endpoint` (NATS: rather than no responders; HTTP+RabbitMQ: from a worker, rather than
//! the gateway's 503). An echo control is ready when it echoes.
//!
//! Before a stack starts, nothing may already answer its subjects or hold its port
//! ([`occupant`]): a service left running on a shared NATS joins the queue group of the one
//! measured and silently takes a share of its load (two stray `ecommerce` processes once made
//! `convergence` report two thirds of the orders as lost).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchError;
use crate::config::stack::host_port;
use crate::config::{StackSpec, Transport};
use crate::system::balancer::{self, BALANCER};
use crate::system::private_brokers::free_port;
use crate::system::process::alive;

/// Where binaries and logs are, and what every process gets on top of its config.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Where the workspace's release binaries are.
    pub bin_dir: PathBuf,
    /// Where each process's output goes (`{stack}-{role}-{i}.log`).
    pub log_dir: PathBuf,
    /// Extra environment for every process (fault settings, for one).
    pub env: Vec<(String, String)>,
    /// How long the stack may take to be ready.
    pub ready_within: Duration,
}

impl StartOptions {
    /// The program a process's command names: the workspace's binary beside the runner; for a
    /// broker the stack starts itself (`broker`: it `listens`), else a program on the `PATH` (such
    /// as `nats-server`) or an absolute path.
    pub fn program(&self, name: &str, broker: bool) -> Option<PathBuf> {
        let beside = self.bin_dir.join(name);
        if beside.is_file() {
            return Some(beside);
        }
        if !broker {
            // A stack's own binaries come from this build only: never an older one on the PATH.
            return None;
        }
        if name.contains('/') {
            // A path of its own (a script of the repository's, by `${BENCH_CONFIG_DIR}/..`).
            return Path::new(name).is_absolute().then(|| PathBuf::from(name)).filter(|path| path.is_file());
        }
        let paths = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&paths)
            // Where Debian puts daemons (haproxy), outside a user's PATH.
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    }

    /// Binaries beside the running executable, logs in `log_dir`.
    pub fn beside_this_binary(log_dir: &Path) -> Result<Self, BenchError> {
        let exe = std::env::current_exe().map_err(BenchError::program("the runner, finding its own path"))?;
        let bin_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Self {
            bin_dir,
            log_dir: log_dir.to_path_buf(),
            env: Vec::new(),
            ready_within: Duration::from_secs(60),
        })
    }
}

/// One process of a running stack.
#[derive(Debug)]
pub struct Member {
    /// Its role and instance: `worker-1`.
    pub role: String,
    /// Whether it is a broker the stack starts itself (a process that `listens`): its CPU and
    /// memory count with the brokers', as the shared brokers' do for the other stacks.
    pub broker: bool,
    /// What it runs.
    launch: Launch,
    child: Child,
}

/// What a member runs, to start it again after an outage killed it.
#[derive(Debug, Clone)]
enum Launch {
    /// An instance of the stack's process `index`, on an address of its own behind the load
    /// balancer when it has one.
    Process { index: usize, address: Option<String> },
    /// The load balancer, with its arguments.
    Balancer { args: Vec<String> },
}

impl Member {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its process and their children: a broker that forks (PostgreSQL's backends) is all of
    /// them.
    pub fn family(&self) -> Vec<u32> {
        archive::server::family(self.pid())
    }

    /// The address of its own it serves on, behind the stack's load balancer.
    pub fn address(&self) -> Option<&str> {
        match &self.launch {
            Launch::Process { address, .. } => address.as_deref(),
            Launch::Balancer { .. } => None,
        }
    }

    /// Whether it is an instance of broker `name`: the broker itself, or one server of its
    /// cluster (`nats-2`).
    pub fn is_broker(&self, name: &str) -> bool {
        let node = self.role.strip_prefix(name).and_then(|rest| rest.strip_prefix('-'));
        self.broker
            && (self.role == name
                || node.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
    }
}

/// A stack whose processes run. Dropping it kills them; [`RunningStack::stop`] stops them
/// gracefully, [`RunningStack::detach`] leaves them running.
#[derive(Debug)]
pub struct RunningStack {
    /// Its name in the config.
    pub name: String,
    /// Its spec.
    pub spec: StackSpec,
    /// The start of its Redis keys and RabbitMQ queues.
    pub prefix: String,
    options: StartOptions,
    members: Vec<Member>,
}

/// What a detached stack leaves behind, to stop it later.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Detached {
    /// Its name in the config.
    pub name: String,
    /// Where it listens.
    pub url: String,
    /// Its transport's name (`nats` or `http`).
    pub transport: String,
    /// Its processes, by role.
    pub pids: Vec<(String, u32)>,
    /// The start of its Redis keys and RabbitMQ queues.
    pub prefix: String,
    /// The folder of the run's certificates it uses, removed once no stack uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<PathBuf>,
}

impl RunningStack {
    /// Starts every process of `spec`, in order, and waits until the stack is ready.
    pub async fn start(name: &str, spec: &StackSpec, options: &StartOptions) -> Result<Self, BenchError> {
        if let Some(occupant) = occupant(spec).await {
            return Err(BenchError::Occupied(format!("{name}: {occupant}")));
        }
        std::fs::create_dir_all(&options.log_dir).map_err(BenchError::io(&options.log_dir))?;
        let prefix = format!("natsrpc-bench-{name}-{}", nuid::next());
        // A cluster's url lists its servers: each is checked when connecting.
        let first = spec.url.split(',').next().unwrap_or_default();
        host_port(first)
            .ok_or_else(|| BenchError::Config(format!("bad url {}", natsrpc::redact_url(first))))?;
        let mut stack = Self {
            name: name.to_string(),
            spec: spec.clone(),
            prefix,
            options: options.clone(),
            members: Vec::new(),
        };
        if spec.uses_run_secrets {
            crate::config::run_secrets::RunSecrets::get().write_files()?;
        }
        for (index, process) in spec.processes.iter().enumerate() {
            let balanced = spec.behind_balancer(process);
            let mut instances = Vec::new();
            let mut ports = Vec::new();
            while balanced && ports.len() < process.instances as usize {
                let port = free_port()?;
                if !ports.contains(&port) {
                    ports.push(port);
                }
            }
            for i in 1..=process.instances {
                let role = if process.instances > 1 {
                    format!("{}-{i}", process.name)
                } else {
                    process.name.clone()
                };
                let address = ports.get(i as usize - 1).map(|port| format!("127.0.0.1:{port}"));
                instances.extend(address.clone().map(|address| (role.clone(), address)));
                let launch = Launch::Process { index, address };
                let child = stack.spawn(&launch, &role, false)?;
                stack.members.push(Member { role, broker: process.listens.is_some(), launch, child });
            }
            if let Some(address) = &process.listens {
                stack.wait_listening(address, options.ready_within).await?;
            }
            if spec.nats_cluster.is_some()
                && process.listens.is_some()
                && spec.processes.get(index + 1).is_some_and(|p| p.listens.is_none())
            {
                // Routed, but a cluster only once its servers have elected a JetStream leader and
                // know each other: a stream of three replicas cannot be made before.
                stack.wait_jetstream(options.ready_within).await?;
            }
            if balanced {
                for (_, address) in &instances {
                    stack.wait_listening(address, options.ready_within).await?;
                }
                let listen = host_port(&spec.url).unwrap_or_default().to_string();
                let args = balancer::write(&options.log_dir, name, &listen, &instances)?;
                let launch = Launch::Balancer { args };
                let child = stack.spawn(&launch, BALANCER, false)?;
                stack.members.push(Member { role: BALANCER.into(), broker: true, launch, child });
                stack.wait_listening(&listen, options.ready_within).await?;
            }
        }
        stack.wait_ready(options.ready_within).await?;
        Ok(stack)
    }

    /// Waits until the stack's NATS cluster can place a stream on all its servers: a JetStream
    /// leader elected, and every server known to it as a peer (before, a stream of three replicas
    /// is refused with "no suitable peers for placement", and a service making one at start
    /// exits). Tried with a probe stream in memory, deleted at once.
    async fn wait_jetstream(&mut self, within: Duration) -> Result<(), BenchError> {
        const PROBE: &str = "NATSRPC_BENCH_CLUSTER_PROBE";
        let replicas = self.spec.nats_cluster.unwrap_or(1) as usize;
        let deadline = Instant::now() + within;
        let mut last = String::from("not asked");
        while Instant::now() < deadline {
            self.none_exited()?;
            match self.spec.connect_nats_with(Some(Duration::from_secs(2))).await {
                Ok(nats) => {
                    let js = async_nats::jetstream::new(nats);
                    let probe = async_nats::jetstream::stream::Config {
                        name: PROBE.to_string(),
                        subjects: vec!["natsrpc.bench.cluster.probe".to_string()],
                        num_replicas: replicas,
                        storage: async_nats::jetstream::stream::StorageType::Memory,
                        ..Default::default()
                    };
                    match js.create_stream(probe).await {
                        Ok(_) => {
                            let _ = js.delete_stream(PROBE).await;
                            return Ok(());
                        }
                        Err(error) => last = error.to_string(),
                    }
                }
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(BenchError::Process(format!(
            "{}: the NATS cluster could not place a stream on its {replicas} servers within {within:?}: {last}",
            self.name
        )))
    }

    /// Starts one member (`role`), its output into its log (after what an earlier start of it
    /// wrote, when `again`).
    fn spawn(&self, launch: &Launch, role: &str, again: bool) -> Result<Child, BenchError> {
        let (spec, options, name) = (&self.spec, &self.options, &self.name);
        let (index, address) = match launch {
            Launch::Process { index, address } => (*index, address.as_deref()),
            Launch::Balancer { args } => {
                let program = options.program(balancer::PROGRAM, true).ok_or_else(|| {
                    BenchError::Process(format!(
                        "{name}: {} is not installed (scripts/start-test-services.sh installs it)",
                        balancer::PROGRAM
                    ))
                })?;
                let mut command = Command::new(program);
                command.args(args);
                return self.spawn_logged(command, role, again);
            }
        };
        let process = &spec.processes[index];
        let binary = options
            .program(&process.command[0], process.listens.is_some())
            .unwrap_or_else(|| options.bin_dir.join(&process.command[0]));
        // Placed on its CPUs by `taskset`, which then becomes the process: its PID is the
        // stack process's, for stopping and for the CPU and memory figures.
        let mut command = match &process.cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpus).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command.args(&process.command[1..]);
        match spec.transport {
            Transport::Nats => command.env("NATS_URL", &spec.url).envs(&spec.nats),
            Transport::Http => command.env("HTTP_ADDR", address.or(host_port(&spec.url)).unwrap_or_default()),
        };
        command.env("REDIS_PREFIX", &self.prefix).env("QUEUE_PREFIX", &self.prefix);
        // mimalloc on transparent huge pages zeroes 2 MiB for every page it takes back
        // (15% of a busy service's CPU): off for every stack alike, whatever the host's mode.
        command.env("MIMALLOC_ALLOW_THP", "0");
        if spec.uses_run_secrets {
            command.envs(crate::config::run_secrets::RunSecrets::get().variables());
        }
        command.envs(&process.env).envs(options.env.iter().map(|(k, v)| (k, v)));
        if let Some(address) = address {
            // Its own, whatever the process's environment says.
            command.env("HTTP_ADDR", address);
        }
        self.spawn_logged(command, role, again)
    }

    /// Starts `command` with its output into the log of `role`.
    fn spawn_logged(&self, mut command: Command, role: &str, again: bool) -> Result<Child, BenchError> {
        let (options, name) = (&self.options, &self.name);
        let log_path = options.log_dir.join(format!("{name}-{role}.log"));
        let log = File::options()
            .create(true)
            .write(true)
            .append(again)
            .truncate(!again)
            .open(&log_path)
            .map_err(BenchError::io(&log_path))?;
        let log_err = log.try_clone().map_err(BenchError::io(&log_path))?;
        command.stdout(Stdio::from(log)).stderr(Stdio::from(log_err));
        let program = command.get_program().to_string_lossy().into_owned();
        command.spawn().map_err(BenchError::program(format!("{name}: cannot start {program}")))
    }

    /// The member whose role is `role`.
    fn member(&mut self, role: &str) -> Result<&mut Member, BenchError> {
        let name = &self.name;
        self.members
            .iter_mut()
            .find(|m| m.role == role)
            .ok_or_else(|| BenchError::Process(format!("{name} has no process {role}")))
    }

    /// Kills `role` at once (SIGKILL), as a crash would: nothing is closed cleanly. A broker's
    /// children go with it (PostgreSQL's backends, which would otherwise hold its cluster).
    pub fn kill(&mut self, role: &str) -> Result<(), BenchError> {
        let member = self.member(role)?;
        // Only while it runs: the PID of a process already reaped may be another's by now.
        if member.broker && matches!(member.child.try_wait(), Ok(None)) {
            for pid in member.family() {
                let _ = signal("KILL", pid);
            }
        }
        let _ = member.child.kill();
        let _ = member.child.wait();
        Ok(())
    }

    /// Starts `role` again, after [`RunningStack::kill`], with the same command, port and data;
    /// for a broker (or an instance behind the balancer), waits until it accepts connections
    /// (within the stack's start time).
    pub async fn restart(&mut self, role: &str) -> Result<(), BenchError> {
        self.kill(role)?;
        let launch = self.member(role)?.launch.clone();
        let child = self.spawn(&launch, role, true)?;
        self.member(role)?.child = child;
        let listens = match &launch {
            // A balanced instance is back once it takes connections on its own address.
            Launch::Process { index, address } => {
                self.spec.processes[*index].listens.clone().or_else(|| address.clone())
            }
            Launch::Balancer { .. } => host_port(&self.spec.url).map(str::to_string),
        };
        if let Some(address) = listens {
            self.wait_listening(&address, self.options.ready_within).await?;
        }
        Ok(())
    }

    /// Sends `role` SIGSTOP (`stop`) or SIGCONT: it keeps its connections and does nothing. A
    /// broker's children are stalled with it.
    pub fn pause(&mut self, role: &str, stop: bool) -> Result<(), BenchError> {
        let member = self.member(role)?;
        let pids = if member.broker { member.family() } else { vec![member.pid()] };
        let name = if stop { "STOP" } else { "CONT" };
        for pid in pids {
            let status = signal(name, pid).map_err(BenchError::program("kill"))?;
            if !status.success() && pid == member.pid() {
                return Err(BenchError::Process(format!("kill -{name} {role} ({pid}) failed: {status}")));
            }
        }
        Ok(())
    }

    /// Its processes.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Its own processes' ids: not the brokers it starts.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter(|m| !m.broker).map(Member::pid).collect()
    }

    /// Waits until the last process started (a broker of the stack's own) accepts connections at
    /// `address`, so that the processes after it find it up.
    async fn wait_listening(&mut self, address: &str, within: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                return Ok(());
            }
            self.none_exited()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(BenchError::Process(format!("{}: nothing listened on {address} within {within:?}", self.name)))
    }

    /// An error naming the first process that has already exited: a stack still starting has
    /// lost it.
    fn none_exited(&mut self) -> Result<(), BenchError> {
        for member in &mut self.members {
            if let Ok(Some(status)) = member.child.try_wait() {
                return Err(BenchError::Process(format!(
                    "{} {} exited at start ({status}); see its log",
                    self.name, member.role
                )));
            }
        }
        Ok(())
    }

    async fn wait_ready(&mut self, within: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + within;
        let mut last = String::from("not tried");
        while Instant::now() < deadline {
            self.none_exited()?;
            match ready(&self.spec).await {
                Ok(()) => return Ok(()),
                Err(why) => last = why.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(BenchError::Process(format!("{} was not ready within {within:?}: {last}", self.name)))
    }

    /// Stops every process (the last started first): SIGTERM, then SIGKILL after `grace`; then
    /// removes the stack's state from the shared Redis.
    pub async fn stop(mut self, grace: Duration) -> Result<(), BenchError> {
        let members = std::mem::take(&mut self.members);
        for mut member in members.into_iter().rev() {
            // A broker's children (PostgreSQL's backends) are let run if stalled, and killed if
            // they outlive it.
            let family = match member.child.try_wait() {
                Ok(None) if member.broker => member.family(),
                _ => Vec::new(),
            };
            for pid in family.iter().skip(1) {
                let _ = signal("CONT", *pid);
            }
            terminate(member.pid(), grace);
            let _ = member.child.wait();
            for pid in family.into_iter().skip(1).filter(|pid| alive(*pid)) {
                let _ = signal("KILL", pid);
            }
        }
        // Only a stack that keeps state in the shared Redis left any there (one that runs
        // elsewhere, or names a Redis of its own, did not).
        let shared_redis = self.spec.brokers.iter().any(|broker| broker == "redis")
            && !self.spec.processes.iter().any(|p| p.env.contains_key("REDIS_URL"));
        if !shared_redis || self.spec.is_external() {
            return Ok(());
        }
        clear_state(&self.prefix).await
    }

    /// Leaves the processes running, answering what is needed to stop them later.
    pub fn detach(mut self) -> Detached {
        let members = std::mem::take(&mut self.members);
        Detached {
            name: self.name.clone(),
            url: self.spec.url.clone(),
            transport: match self.spec.transport {
                Transport::Nats => "nats".into(),
                Transport::Http => "http".into(),
            },
            pids: members.iter().map(|m| (m.role.clone(), m.pid())).collect(),
            prefix: self.prefix.clone(),
            secrets: self
                .spec
                .uses_run_secrets
                .then(|| crate::config::run_secrets::RunSecrets::get().dir().to_path_buf()),
        }
    }
}

impl Drop for RunningStack {
    fn drop(&mut self) {
        for member in &mut self.members {
            let _ = member.child.kill();
            let _ = member.child.wait();
        }
    }
}

impl Detached {
    /// Stops the processes by PID (SIGTERM, SIGKILL after `grace`) and removes the stack's state.
    pub async fn stop(&self, grace: Duration) -> Result<(), BenchError> {
        for (_, pid) in self.pids.iter().rev() {
            terminate(*pid, grace);
        }
        clear_state(&self.prefix).await
    }
}

/// SIGTERM, then SIGKILL if `pid` is still there after `grace`.
fn terminate(pid: u32, grace: Duration) {
    if !alive(pid) {
        return;
    }
    // A process stalled by an outage hears nothing until it runs again.
    let _ = signal("CONT", pid);
    let _ = signal("TERM", pid);
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        let _ = signal("KILL", pid);
    }
}

/// Sends the signal `name` (`TERM`, `STOP`...) to `pid` by `kill(1)` (this workspace forbids the
/// `unsafe` a libc call would need).
fn signal(name: &str, pid: u32) -> std::io::Result<std::process::ExitStatus> {
    // Quiet: a child of a broker's may have gone between the listing and the signal.
    Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).stderr(Stdio::null()).status()
}

/// Removes a stack's keys from Redis (its queues expire by themselves once unused).
async fn clear_state(prefix: &str) -> Result<(), BenchError> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ca = std::env::var_os("REDIS_CA").filter(|ca| !ca.is_empty()).map(std::path::PathBuf::from);
    let pool = stack::redis::RedisPool::connect_with(&url, ca.as_deref(), 1, prefix).await?;
    pool.clear().await?;
    Ok(())
}

/// What already answers the subjects `spec` is about to serve, or holds its port, when anything
/// does; `None` when the stack can start. A stack with no processes of its own (one deployed
/// elsewhere) is not checked.
pub async fn occupant(spec: &StackSpec) -> Option<String> {
    if spec.processes.is_empty() {
        return None;
    }
    if let Some(taken) = spec.processes.iter().filter_map(|p| p.listens.as_deref()).find_map(port_taken) {
        return Some(taken);
    }
    match spec.transport {
        Transport::Nats => {
            let subjects: Vec<String> = match &spec.echo_subject {
                Some(subject) => vec![subject.clone()],
                None => spec.services().iter().map(|service| format!("{service}.__ready")).collect(),
            };
            nats_occupant(spec, &subjects).await
        }
        Transport::Http => port_taken(host_port(&spec.url)?),
    }
}

/// Why `address` cannot be listened on by the stack, when something holds it.
fn port_taken(address: &str) -> Option<String> {
    match std::net::TcpListener::bind(address) {
        Ok(_free) => None,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => Some(format!(
            "{address} is already taken by a process this run did not start (a stack left running? `ss -ltnp 'sport = :{}'` names it): stop it first",
            address.rsplit(':').next().unwrap_or_default()
        )),
        // Another failure (a name that does not resolve) is for the start to report.
        Err(_) => None,
    }
}

/// The longest name, version or id of a stray instance that a refusal quotes, in bytes.
const MAX_PING_FIELD: usize = 64;

/// The most stray instances a refusal names one by one.
const MAX_NAMED: usize = 8;

/// Who answers `subjects` on the stack's NATS server before the stack is there: instances named
/// by their Services API `PING` when they are natsrpc services.
async fn nats_occupant(spec: &StackSpec, subjects: &[String]) -> Option<String> {
    use futures::StreamExt;
    // An unreachable server, or credentials it refuses, is for the start to report.
    let nats = spec.connect_nats().await.ok()?;
    let url = natsrpc::redact_url(&spec.url);
    let mut answered = Vec::new();
    for subject in subjects {
        let asked =
            tokio::time::timeout(Duration::from_millis(500), nats.request(subject.clone(), "{}".into()));
        // Only an answer counts: a subscriber that never answers (`nats sub '>'` watching, or a
        // process that has just exited and whose subscriptions the server has not dropped yet)
        // takes no share of the load.
        if let Ok(Ok(_)) = asked.await {
            answered.push(subject.split('.').next().unwrap_or(subject).to_string());
        }
    }
    if answered.is_empty() {
        return None;
    }
    let mut instances = Vec::new();
    for service in &answered {
        let inbox = nats.new_inbox();
        let Ok(mut replies) = nats.subscribe(inbox.clone()).await else { continue };
        if nats.publish_with_reply(format!("$SRV.PING.{service}"), inbox, "".into()).await.is_err() {
            continue;
        }
        let collecting = async {
            while let Some(reply) = replies.next().await {
                let ping: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_default();
                // A stray's answer is whatever it says: escaped and cut before it reaches a terminal.
                let field = |name: &str| {
                    natsrpc::escape::escape(ping[name].as_str().unwrap_or("?"), MAX_PING_FIELD).into_owned()
                };
                instances.push(format!("{} {} (id {})", field("name"), field("version"), field("id")));
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(300), collecting).await;
    }
    let who = match instances.len() {
        0 => "processes that are not natsrpc services".to_string(),
        n if n > MAX_NAMED => {
            format!("{n} instances: {}, and {} more", instances[..MAX_NAMED].join(", "), n - MAX_NAMED)
        }
        n => format!("{n} instance(s): {}", instances.join(", ")),
    };
    Some(format!(
        "something this run did not start already answers {} on {url}: {who}. A process left running joins the queue group of the stack measured and takes a share of its load; stop it first (`natsrpc ls`, or `pgrep -af 'nats-services|ecommerce|analytics|fileproc'`)",
        answered.join(", "),
    ))
}

/// Why a stack is not ready yet: what was asked of it and what came back.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotReady(String);

impl From<String> for NotReady {
    fn from(why: String) -> Self {
        NotReady(why)
    }
}

/// Whether every service of the stack answers, through the whole stack.
async fn ready(spec: &StackSpec) -> Result<(), NotReady> {
    match spec.transport {
        Transport::Nats => {
            let nats = spec.connect_nats().await.map_err(|e| e.to_string())?;
            let ask = |subject: String, body: &'static str| {
                let request = nats.request(subject.clone(), body.into());
                async move {
                    tokio::time::timeout(Duration::from_secs(2), request)
                        .await
                        .map_err(|_| format!("{subject}: no reply"))?
                        .map_err(|e| format!("{subject}: {e}"))
                }
            };
            if let Some(subject) = &spec.echo_subject {
                return ask(subject.clone(), "ping").await.map(|_| ()).map_err(NotReady::from);
            }
            for service in spec.services() {
                let reply = ask(format!("{service}.__ready"), "{}").await?;
                if natsrpc::headers::reply_status(reply.headers.as_ref()) != 404 {
                    return Err(NotReady::from(format!("{service}.__ready: unexpected reply")));
                }
            }
            Ok(())
        }
        Transport::Http => {
            let http = crate::target::client::HttpConnections::to(spec, Duration::from_secs(2))
                .map_err(|e| e.to_string())?;
            if let Some(path) = &spec.echo_subject {
                let url = format!("{}{path}", natsrpc::redact_url(&spec.url));
                return match http.post(path, "ping".into()).await {
                    Ok(reply) if reply.status == 200 && reply.payload.as_ref() == b"ping" => Ok(()),
                    Ok(reply) => Err(NotReady::from(format!("{url}: {}, not an echo", reply.status))),
                    Err(error) => Err(NotReady::from(format!("{url}: {}", error.kind()))),
                };
            }
            for service in spec.services() {
                let path = format!("/{service}/__ready");
                let reply = http.post(&path, "{}".into()).await.map_err(|e| format!("{path}: {e:?}"))?;
                let (status, body) = (reply.status, reply.payload);
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if status != 404 || body["error"]["kind"] != "unknown_endpoint" {
                    return Err(NotReady::from(format!("{path}: {status} {body}")));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::stack::host_port;

    #[test]
    fn host_and_port_of_urls() {
        assert_eq!(host_port("http://127.0.0.1:8080"), Some("127.0.0.1:8080"));
        assert_eq!(host_port("nats://localhost:4222/"), Some("localhost:4222"));
        assert_eq!(host_port("http://127.0.0.1"), None);
        assert_eq!(host_port("127.0.0.1:80"), None);
    }
}
