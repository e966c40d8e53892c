//! What the runner's tests share: where the workspace is, and the stacks' binaries.

use std::path::{Path, PathBuf};

/// The workspace's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder of this profile's binaries, with the stacks' binaries built if they are not yet
/// (other packages' binaries are built for their own tests only).
pub fn bin_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_echo-vs-raw")).parent().unwrap().to_path_buf();
    if ["nats-services", "http-redis", "http-rabbitmq"].iter().any(|bin| !dir.join(bin).exists()) {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "stack", "-p", "http-redis", "-p", "http-rabbitmq", "--bins"])
            .current_dir(workspace())
            .status()
            .unwrap();
        assert!(status.success(), "building the stacks' binaries");
    }
    dir
}
