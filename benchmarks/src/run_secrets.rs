//! What a run makes for stacks that start secured brokers of their own (the `*-secured` stacks):
//! a private CA with a server and a client certificate, and a password, none of which exists
//! before the run or outlives it. The configuration refers to them as `${BENCH_TLS_CA}` and so on,
//! and the stacks' processes get them as environment variables, so that a broker's own
//! configuration file (`config/nats-server/bench-secured.conf`) can read them too.
//!
//! They are made the first time the configuration names one; a run whose stacks name none makes
//! nothing.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The variables, in the order [`RunSecrets::variables`] answers them.
pub const NAMES: [&str; 6] = [
    "BENCH_TLS_CA",
    "BENCH_TLS_CERT",
    "BENCH_TLS_KEY",
    "BENCH_TLS_CLIENT_CERT",
    "BENCH_TLS_CLIENT_KEY",
    "BENCH_SECRET",
];

/// The CA, certificates and password of this run.
#[derive(Debug)]
pub struct RunSecrets {
    dir: PathBuf,
    pki: natsrpc::testing::TestCa,
    password: String,
}

static MADE: OnceLock<Result<RunSecrets, String>> = OnceLock::new();

impl RunSecrets {
    /// This run's, made now if they were not yet (openssl, in a folder of the system's temporary
    /// directory that only this process uses).
    pub fn get() -> Result<&'static RunSecrets, String> {
        MADE.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("natsrpc-bench-secrets-{}", std::process::id()));
            let pki = natsrpc::testing::TestCa::make(&dir).map_err(|e| {
                format!("cannot make the run's TLS certificates (is openssl installed?): {e}")
            })?;
            Ok(RunSecrets { dir, pki, password: format!("bench-{}", nuid::next()) })
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    /// The ones made so far, if any: what the stacks' processes get.
    pub fn made() -> Option<&'static RunSecrets> {
        MADE.get().and_then(|made| made.as_ref().ok())
    }

    /// Each variable and its value.
    pub fn variables(&self) -> [(&'static str, String); 6] {
        let path = |p: &PathBuf| p.display().to_string();
        [
            (NAMES[0], path(&self.pki.ca)),
            (NAMES[1], path(&self.pki.server.0)),
            (NAMES[2], path(&self.pki.server.1)),
            (NAMES[3], path(&self.pki.client.0)),
            (NAMES[4], path(&self.pki.client.1)),
            (NAMES[5], self.password.clone()),
        ]
    }

    /// Removes the files (at the end of the run; the processes that read them have stopped).
    pub fn remove() {
        if let Some(made) = Self::made() {
            let _ = std::fs::remove_dir_all(&made.dir);
        }
    }
}

/// The value of `name` when it is one of the run's variables (making them if needed), `None` when
/// it is not; an error when they cannot be made.
pub fn lookup(name: &str) -> Result<Option<String>, String> {
    if !NAMES.contains(&name) {
        return Ok(None);
    }
    let secrets = RunSecrets::get()?;
    Ok(secrets.variables().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v))
}
