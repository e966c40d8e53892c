//! What a run makes for stacks that start secured brokers of their own (the `*-secured` stacks):
//! a private CA with a server and a client certificate, and a password, none of which exists
//! before the run or outlives it. The configuration refers to them as `${BENCH_TLS_CA}` and so on;
//! the processes of a stack that names them get them as environment variables too, so that a
//! broker's own configuration file (`config/nats-server/bench-secured.conf`) can read them.
//!
//! Their names and the password are fixed when the configuration is read; the files are written
//! (openssl, in a new folder only this user may enter) when the first stack that names them
//! starts, and removed when the run ends ([`Cleanup`]). A run whose stacks name none writes
//! nothing.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

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
pub struct RunSecrets {
    dir: PathBuf,
    password: String,
    /// Whether the files are there.
    written: Mutex<bool>,
}

static RUN: OnceLock<RunSecrets> = OnceLock::new();

impl RunSecrets {
    /// This run's: a folder name no one can guess and a password, chosen once.
    pub fn get() -> &'static RunSecrets {
        RUN.get_or_init(|| RunSecrets {
            dir: std::env::temp_dir().join(format!("natsrpc-bench-secrets-{}", nuid::next())),
            password: format!("bench-{}", nuid::next()),
            written: Mutex::new(false),
        })
    }

    /// Where the files are (or will be).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the files if they are not there yet: the folder is created for this user alone and
    /// must not exist before (a folder someone else made under that name is refused).
    pub fn write_files(&self) -> Result<(), crate::BenchError> {
        let mut written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *written {
            return Ok(());
        }
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&self.dir).map_err(crate::BenchError::io(&self.dir))?;
        natsrpc::testing::TestCa::make(&self.dir)
            .map_err(crate::BenchError::program("openssl, making the run's TLS certificates"))?;
        *written = true;
        Ok(())
    }

    /// Each variable and its value.
    pub fn variables(&self) -> [(&'static str, String); 6] {
        let path = |name: &str| self.dir.join(name).display().to_string();
        [
            (NAMES[0], path("ca.pem")),
            (NAMES[1], path("server.pem")),
            (NAMES[2], path("server.key")),
            (NAMES[3], path("client.pem")),
            (NAMES[4], path("client.key")),
            (NAMES[5], self.password.clone()),
        ]
    }

    /// Removes the files, if they were written (the processes that read them have stopped); a
    /// later [`RunSecrets::write_files`] writes them again.
    pub fn remove() {
        if let Some(run) = RUN.get() {
            let mut written = run.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if *written {
                let _ = std::fs::remove_dir_all(&run.dir);
                *written = false;
            }
        }
    }
}

/// The password stays out of `{:?}`.
impl std::fmt::Debug for RunSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSecrets").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Removes the run's files when dropped: held by `bench`'s `main`, so that every way out of a run
/// (an error, a refused configuration, the end) removes them.
#[derive(Debug)]
pub struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        RunSecrets::remove();
    }
}

/// The value of `name` when it is one of the run's variables, `None` when it is not.
pub fn lookup(name: &str) -> Option<String> {
    NAMES
        .contains(&name)
        .then(|| RunSecrets::get().variables().into_iter().find(|(n, _)| *n == name))
        .flatten()
        .map(|(_, v)| v)
}

/// Whether `value` names one of the run's variables.
pub fn named_in(value: &str) -> bool {
    NAMES.iter().any(|name| value.contains(&format!("${{{name}}}")))
}
