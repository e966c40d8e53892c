//! A PostgreSQL server of one's own: a cluster made in a folder (`initdb`, trust on loopback) and
//! the command that serves it on a port, for the benchmark's private databases and for tests that
//! stop the database. Never the machine's own server, which others use.
//!
//! PostgreSQL refuses to run as root: run as root, both run as the `postgres` user (by `setpriv`,
//! which execs the server, so that the PID one kills is the server's).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The newest of Debian's PostgreSQL installs (`/usr/lib/postgresql/{version}/bin`), or `$PG_BIN`.
pub fn bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN").filter(|dir| !dir.is_empty()) {
        return Ok(dir.into());
    }
    let installed = std::fs::read_dir("/usr/lib/postgresql").map_err(|error| {
        io::Error::new(
            error.kind(),
            "no PostgreSQL in /usr/lib/postgresql (install the postgresql package, or set PG_BIN)",
        )
    })?;
    installed
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
        .ok_or_else(|| io::Error::other("no PostgreSQL server in /usr/lib/postgresql/*/bin"))
}

/// `postgres://postgres@127.0.0.1:{port}/postgres`: the cluster's own database, as its superuser.
pub fn url(port: u16) -> String {
    url_at(&format!("127.0.0.1:{port}"))
}

/// The same database reached at `address` (`host:port`: the server's, or a proxy's in front of it).
pub fn url_at(address: &str) -> String {
    format!("postgres://postgres@{address}/postgres")
}

/// Makes a cluster in `dir` (created here, empty): superuser `postgres`, trusted on loopback (the
/// server listens nowhere else), UTF-8, locale C.
pub fn init(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let user = run_as()?;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    }
    let mut command = as_user(user, &bin_dir()?.join("initdb"));
    command.arg("-D").arg(dir);
    command.args([
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
        "--no-instructions",
    ]);
    let output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        Ok(())
    } else {
        let why = String::from_utf8_lossy(&output.stderr);
        Err(io::Error::other(format!("initdb {}: {}: {}", dir.display(), output.status, why.trim())))
    }
}

/// The command line that serves the cluster in `dir` on 127.0.0.1:`port` (no Unix socket), as
/// durable as a deployment's (fsync on): killed, it recovers from its log when started again.
pub fn command(dir: &Path, port: u16) -> io::Result<Vec<String>> {
    let postgres = bin_dir()?.join("postgres");
    let mut words = match run_as()? {
        Some((uid, gid)) => vec![
            "setpriv".to_string(),
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".to_string(),
        ],
        None => Vec::new(),
    };
    words.push(postgres.display().to_string());
    words.extend(["-D".to_string(), dir.display().to_string(), "-p".to_string(), port.to_string()]);
    for setting in ["listen_addresses=127.0.0.1", "unix_socket_directories=", "max_connections=200"] {
        words.extend(["-c".to_string(), setting.to_string()]);
    }
    Ok(words)
}

/// Waits (up to 30 s) until the server on `port` accepts sessions (`pg_isready`): it listens
/// before it does, while it starts up or recovers from a crash.
pub fn wait_ready(port: u16) -> io::Result<()> {
    let pg_isready = bin_dir()?.join("pg_isready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let status = Command::new(&pg_isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .status()?;
        if status.success() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(io::Error::other(format!("postgres on port {port} did not accept sessions within 30 s")))
}

/// `pid` and its children (from `/proc`): a server that forks a process per session, such as
/// PostgreSQL, is all of them.
pub fn family(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    for entry in entries.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        // `pid (name) state ppid ...`: the name may hold spaces and parentheses, so read after the last `)`.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let parent =
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if parent == Some(pid) {
            pids.push(child);
        }
    }
    pids
}

/// The `postgres` user's uid and gid when this process is root (which PostgreSQL refuses to run
/// as); `None` when it is not.
fn run_as() -> io::Result<Option<(u32, u32)>> {
    if std::fs::metadata("/proc/self")?.uid() != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres") && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .map(Some)
        .ok_or_else(|| io::Error::other("run as root, and no postgres user to run PostgreSQL as"))
}

fn as_user(user: Option<(u32, u32)>, program: &Path) -> Command {
    let mut command = Command::new(program);
    if let Some((uid, gid)) = user {
        use std::os::unix::process::CommandExt;
        command.uid(uid).gid(gid);
    }
    command
}

/// A PostgreSQL server of a test's own on a free loopback port, its cluster in a temporary folder;
/// killed and its folder removed when dropped.
#[derive(Debug)]
pub struct PostgresServer {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PostgresServer {
    /// Makes a cluster and serves it; waits until it accepts connections.
    pub fn start() -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("natsrpc-postgres-{}", nuid::next()));
        // Made before the cluster, so that its folder goes (when dropped) whatever fails.
        let mut server = Self { dir, port: natsrpc::testing::free_port()?, child: None };
        init(&server.dir)?;
        server.spawn()?;
        Ok(server)
    }

    /// Where its database is.
    pub fn url(&self) -> String {
        url(self.port)
    }

    /// Kills the server and its backends (SIGKILL to each, from [`family`]), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = self.signal(&child, "-CONT");
            let _ = self.signal(&child, "-KILL");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and cluster, after [`PostgresServer::kill`]; it
    /// recovers what it had committed.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        // The killed server's backends notice its death and leave; until then a new server
        // refuses the cluster (its shared memory is still in use).
        let mut last = None;
        for _ in 0..50 {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(error) => last = Some(error),
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(last.unwrap_or_else(|| io::Error::other("postgres did not start again")))
    }

    /// Freezes the server and its backends (SIGSTOP, `true`) or lets them go on (SIGCONT).
    pub fn pause(&self, stop: bool) -> io::Result<()> {
        let child = self.child.as_ref().ok_or_else(|| io::Error::other("not running"))?;
        self.signal(child, if stop { "-STOP" } else { "-CONT" })
    }

    /// Sends `signal` to the server and its backends.
    fn signal(&self, child: &Child, signal: &str) -> io::Result<()> {
        let pids: Vec<String> = family(child.id()).iter().map(u32::to_string).collect();
        let status = Command::new("kill").arg(signal).args(&pids).status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill {signal} {pids:?}: {status}")))
        }
    }

    fn spawn(&mut self) -> io::Result<()> {
        let words = command(&self.dir, self.port)?;
        let child = Command::new(&words[0])
            .args(&words[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let child = self.child.insert(child);
        let listening = natsrpc::testing::wait_for_port(child, self.port, "postgres")
            .and_then(|()| wait_ready(self.port));
        if listening.is_err() {
            self.kill();
        }
        listening
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
