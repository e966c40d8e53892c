//! A private RabbitMQ for tests of users, virtual hosts and TLS: never the shared broker.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A RabbitMQ node of the test's own, on free loopback ports, with one user (its only one: no
/// `guest`) owning one virtual host, and no plugins; its files in a temporary folder; stopped
/// (SIGTERM, then SIGKILL) and its folder removed when dropped. It registers with the machine's
/// `epmd`, which the shared RabbitMQ runs (`scripts/start-test-services.sh` starts it).
#[derive(Debug)]
pub struct RabbitServer {
    port: u16,
    tls: bool,
    dir: PathBuf,
    child: Option<Child>,
}

/// TLS for the listener: the server's certificate and key, and the CA its clients' certificates
/// must come from (asked for, and required when `require_client_certificate`).
#[derive(Debug, Clone)]
pub struct RabbitTls {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server: (PathBuf, PathBuf),
    /// Refuse clients without a certificate the CA signed.
    pub require_client_certificate: bool,
}

/// How long a node may take to boot: several seconds on a quiet 2-core machine.
const BOOT: Duration = Duration::from_secs(90);

impl RabbitServer {
    /// Starts a node whose only user is `user` with `password`, owning `vhost`; its listener
    /// speaks TLS only (`amqps://`) when `tls` is given, plain AMQP otherwise.
    pub fn start(user: &str, password: &str, vhost: &str, tls: Option<&RabbitTls>) -> std::io::Result<Self> {
        let port = natsrpc::testing::free_port()?;
        let dist_port = port_besides(port)?;
        let dir = std::env::temp_dir().join(format!("natsrpc-test-rabbitmq-{port}-{}", nuid::next()));
        std::fs::create_dir_all(&dir)?;
        let mut config = vec![
            format!("default_user = {user}"),
            format!("default_pass = {password}"),
            format!("default_vhost = {vhost}"),
            "default_permissions.configure = .*".into(),
            "default_permissions.read = .*".into(),
            "default_permissions.write = .*".into(),
            "loopback_users = none".into(),
        ];
        match tls {
            None => config.push(format!("listeners.tcp.default = 127.0.0.1:{port}")),
            Some(tls) => config.extend([
                "listeners.tcp = none".into(),
                format!("listeners.ssl.default = 127.0.0.1:{port}"),
                format!("ssl_options.cacertfile = {}", tls.ca.display()),
                format!("ssl_options.certfile = {}", tls.server.0.display()),
                format!("ssl_options.keyfile = {}", tls.server.1.display()),
                "ssl_options.verify = verify_peer".into(),
                format!("ssl_options.fail_if_no_peer_cert = {}", tls.require_client_certificate),
            ]),
        }
        std::fs::write(dir.join("rabbitmq.conf"), config.join("\n") + "\n")?;
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        let mut server = Self { port, tls: tls.is_some(), dir, child: None };
        server.spawn(dist_port)?;
        Ok(server)
    }

    /// `amqp://user:password@127.0.0.1:{port}/{vhost}` (`amqps://` when it speaks TLS).
    pub fn url(&self, user: &str, password: &str, vhost: &str) -> String {
        let scheme = if self.tls { "amqps" } else { "amqp" };
        format!("{scheme}://{user}:{password}@127.0.0.1:{}/{vhost}", self.port)
    }

    /// Its listener's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the node at once (SIGKILL), as a crash would: no connection is closed cleanly.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node again after [`kill`](Self::kill), on the same port with the same files
    /// (users, virtual hosts and durable queues kept), and waits until it listens.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        let dist_port = port_besides(self.port)?;
        self.spawn(dist_port)
    }

    fn spawn(&mut self, dist_port: u16) -> std::io::Result<()> {
        let dir = &self.dir;
        let path = |name: &str| dir.join(name);
        // `RUNNING_UNDER_SYSTEMD` makes the script exec the Erlang VM in its own process, so that
        // the child is the node itself and a signal to it reaches the broker.
        let child = Command::new(binary())
            .env("RUNNING_UNDER_SYSTEMD", "1")
            .env("HOME", dir)
            .env("RABBITMQ_NODENAME", format!("natsrpc-test-{}@localhost", self.port))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", path("plugins"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path("stderr.log"))?)
            .spawn()?;
        let child = self.child.insert(child);
        let deadline = Instant::now() + BOOT;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(self.failed(&format!("exited at start: {status}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(self.failed(&format!("did not listen within {BOOT:?}")))
    }

    fn failed(&mut self, what: &str) -> std::io::Error {
        self.stop();
        let said = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        std::io::Error::other(format!("private rabbitmq-server {what}: {}", said.trim()))
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port for the node's distribution, other than its listener's `port`.
fn port_besides(port: u16) -> std::io::Result<u16> {
    loop {
        let other = natsrpc::testing::free_port()?;
        if other != port {
            return Ok(other);
        }
    }
}

/// `$RABBITMQ_SERVER_BIN`, else the Debian package's script (the one on the `PATH` runs the
/// broker as another user, through `su`).
fn binary() -> PathBuf {
    match std::env::var_os("RABBITMQ_SERVER_BIN") {
        Some(path) => PathBuf::from(path),
        None => Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").to_path_buf(),
    }
}
