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
            .args(["build", "--quiet", "-p", "stack", "-p", "http-redis", "-p", "http-rabbitmq", "--bins"])
            .current_dir(workspace())
            .status()
            .is_ok_and(|status| status.success())
    });
    assert!(built, "building the stacks' binaries");
    PathBuf::from(env!("CARGO_BIN_EXE_echo-vs-raw")).parent().unwrap().to_path_buf()
}
