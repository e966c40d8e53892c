//! A private `redis-server` for tests that stall, stop or restart the store: never the shared one.

use std::process::{Child, Command, Stdio};

/// A `redis-server` of the test's own on a free loopback port, keeping nothing on disk, killed
/// when dropped. The binary is `$REDIS_SERVER_BIN`, else `redis-server` on the `PATH`.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// Arguments on top of the test's own (TLS, users), and whether the port speaks TLS.
    extra: Vec<String>,
    tls: bool,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(&[], false)
    }

    /// Starts a server with `extra` settings (`--user`, `--requirepass`...), its port speaking TLS
    /// only when `tls` (then `extra` names the certificates: `--tls-cert-file`, `--tls-key-file`,
    /// `--tls-ca-cert-file`).
    pub fn start_with(extra: &[&str], tls: bool) -> std::io::Result<Self> {
        let mut last_error = None;
        for _ in 0..3 {
            let port = natsrpc::testing::free_port()?;
            let extra = extra.iter().map(|a| a.to_string()).collect();
            let mut server = Self { port, child: None, extra, tls };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("redis-server did not start")))
    }

    /// `redis://127.0.0.1:{port}` (`rediss://` when it speaks TLS).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.tls { "rediss" } else { "redis" }, self.port)
    }

    /// Freezes the server (SIGSTOP), as a stalled host would: connections stay open, nothing
    /// answers.
    pub fn pause(&self) -> std::io::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) -> std::io::Result<()> {
        self.signal("-CONT")
    }

    /// Kills the server (SIGKILL) and starts it again on the same port: empty, as it keeps
    /// nothing on disk.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        self.spawn()
    }

    fn signal(&self, signal: &str) -> std::io::Result<()> {
        let pid = self.child.as_ref().map(Child::id).ok_or_else(|| std::io::Error::other("not running"))?;
        let status = Command::new("kill").arg(signal).arg(pid.to_string()).status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("kill {signal} {pid}: {status}")))
        }
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let binary = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_string());
        let port = self.port.to_string();
        let listen = if self.tls { vec!["--port", "0", "--tls-port", &port] } else { vec!["--port", &port] };
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1"])
            .args(listen)
            .args(&self.extra)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let child = self.child.insert(child);
        let listening = natsrpc::testing::wait_for_port(child, self.port, "redis-server");
        if listening.is_err() {
            self.stop();
        }
        listening
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped process takes SIGKILL too; SIGCONT first so that it is reaped at once.
            let _ = Command::new("kill").arg("-CONT").arg(child.id().to_string()).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
