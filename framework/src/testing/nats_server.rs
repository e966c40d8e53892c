//! A private `nats-server` for tests that stop, restart or cut off the broker.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server` of the test's own on a free loopback port, killed when dropped.
///
/// The binary is `$NATS_SERVER_BIN`, else `nats-server` on the `PATH`, else `/usr/sbin/nats-server`.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    child: Option<Child>,
    store: PathBuf,
    /// A configuration file of its own (credentials, TLS), when started with one.
    config: Option<PathBuf>,
}

impl NatsServer {
    /// Starts a server with JetStream on a free port and waits until it accepts connections.
    pub fn start() -> std::io::Result<Self> {
        Self::start_with_config("")
    }

    /// Starts a server whose configuration file holds `config` (an `authorization` block, `tls`,
    /// accounts: nats-server's syntax); the port, the address and JetStream's store stay the test's.
    pub fn start_with_config(config: &str) -> std::io::Result<Self> {
        // A free port, released a moment before nats-server binds it; another process may take
        // it in between, so a failed start tries another port.
        let mut last_error = None;
        for _ in 0..3 {
            let port = super::free_port()?;
            let store = std::env::temp_dir().join(format!("natsrpc-test-nats-{port}-{}", nuid::next()));
            let config = match config {
                "" => None,
                text => {
                    let path = store.with_extension("conf");
                    std::fs::write(&path, text)?;
                    Some(path)
                }
            };
            let mut server = Self { port, child: None, store, config };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("nats-server did not start")))
    }

    /// `nats://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on; the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as a crash would) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let mut command = Command::new(binary());
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        let child = command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let child = self.child.insert(child);
        let listening = wait_for_port(child, self.port, "nats-server");
        if listening.is_err() {
            self.stop();
        }
        listening
    }
}

/// Waits (up to 10 s) until the server `child`, named `name`, accepts connections on `port` of
/// 127.0.0.1; an error when it exits first or never listens. For tests' private servers.
pub fn wait_for_port(child: &mut Child, port: u16, name: &str) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(std::io::Error::other(format!("{name} exited at start: {status}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(std::io::Error::other(format!("{name} did not listen on port {port} within 10 s")))
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
        if let Some(config) = &self.config {
            let _ = std::fs::remove_file(config);
        }
    }
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}
