//! What the runner's tests share: where the workspace is, and the stacks' binaries.

use std::path::{Path, PathBuf};

/// The workspace's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder of this profile's binaries, with the stacks' binaries built (cargo builds other
/// packages' binaries for their own tests only, so they may be missing or older than the code): once
/// per test process, and a no-op when they are current.
pub fn bin_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "stack", "-p", "http-redis", "-p", "http-rabbitmq"])
            // The services on their own, the report and the natsrpc command line, whose command
            // lines are tested too.
            .args(["-p", "ecommerce", "-p", "analytics", "-p", "fileproc", "-p", "bench-report", "-p", "natsrpc-cli", "--bins"])
            .current_dir(workspace())
            .status()
            .is_ok_and(|status| status.success())
            // The framework's echo example, which the own-service tests benchmark.
            && std::process::Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "natsrpc", "--example", "echo"])
                .current_dir(workspace())
                .status()
                .is_ok_and(|status| status.success())
    });
    assert!(built, "building the stacks' binaries");
    PathBuf::from(env!("CARGO_BIN_EXE_echo-vs-raw")).parent().unwrap().to_path_buf()
}

/// The folders in the system's temporary folder whose names start with `prefix` (what a run
/// leaves behind when it should not).
#[allow(dead_code)] // each test crate uses some of the support
pub fn temp_folders(prefix: &str) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(std::env::temp_dir()).unwrap().flatten();
    entries
        .map(|entry| entry.path())
        .filter(|path| path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .collect()
}

/// `bench` on the config file `config`, writing under `reports`, with none of the environment's
/// overrides (`PROFILE`, `DURATION`, `SCENARIOS`, `STACKS`) leaking in from the shell.
#[allow(dead_code)] // each test crate uses some of the support
pub fn bench(config: &Path, reports: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(bin_dir().join("bench"));
    command
        .args(["--config", &config.to_string_lossy(), "--reports", &reports.to_string_lossy()])
        .env("RUST_LOG", "warn")
        .env_remove("PROFILE")
        .env_remove("DURATION")
        .env_remove("SCENARIOS")
        .env_remove("STACKS");
    command
}
