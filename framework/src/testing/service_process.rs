//! A service binary run as its own process, as in production: for tests of `main`, signals,
//! drain and crashes.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A running service binary, killed when dropped if still running.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `binary` with `NATS_URL=nats_url`, `RUST_LOG=warn` and the extra environment `env`.
    pub fn spawn(binary: &str, nats_url: &str, env: &[(&str, &str)]) -> std::io::Result<Self> {
        let mut all = vec![("NATS_URL", nats_url)];
        all.extend_from_slice(env);
        Self::spawn_with(binary, &[], &all)
    }

    /// Starts `binary` with `args`, `RUST_LOG=warn` and the environment `env`, its standard
    /// output discarded.
    pub fn spawn_with(binary: &str, args: &[&str], env: &[(&str, &str)]) -> std::io::Result<Self> {
        Self::spawn_to(binary, args, env, Stdio::null(), Stdio::inherit())
    }

    /// [`ServiceProcess::spawn_with`], all it prints (standard output and error) going to `log`:
    /// for a test that reads what the service said.
    pub fn spawn_logging(
        binary: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: std::fs::File,
    ) -> std::io::Result<Self> {
        Self::spawn_to(binary, args, env, log.try_clone()?.into(), log.into())
    }

    fn spawn_to(
        binary: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stdout: Stdio,
        stderr: Stdio,
    ) -> std::io::Result<Self> {
        let mut command = Command::new(binary);
        command.args(args).env("RUST_LOG", "warn").stdout(stdout).stderr(stderr);
        for (name, value) in env {
            command.env(name, value);
        }
        Ok(Self { child: Some(command.spawn()?) })
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|child| child.try_wait().ok().flatten())
    }

    /// Kills it at once (SIGKILL, as a crash would) and waits for it to go.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (up to 10 s) until the service answers `$SRV.INFO.{service}`, and returns that answer.
    pub async fn wait_for_info(
        &self,
        nats: &async_nats::Client,
        service: &str,
    ) -> Result<serde_json::Value, String> {
        for _ in 0..200 {
            if let Ok(reply) = nats.request(format!("$SRV.INFO.{service}"), "".into()).await {
                return serde_json::from_slice(&reply.payload).map_err(|e| format!("INFO is not JSON: {e}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("{service} did not answer $SRV.INFO within 10 s"))
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(mut self) -> std::io::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else { return Err(std::io::Error::other("already stopped")) };
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
        if !status.success() {
            return Err(std::io::Error::other("kill -TERM failed"));
        }
        tokio::task::spawn_blocking(move || child.wait()).await.map_err(std::io::Error::other)?
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The names of the endpoints an `INFO` answer lists, sorted.
pub fn endpoint_names(info: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = info["endpoints"]
        .as_array()
        .map(|endpoints| endpoints.iter().filter_map(|e| e["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    names.sort();
    names
}
