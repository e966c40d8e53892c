//! Every binary of the workspace, as `cargo metadata` lists them (so that a new one is covered
//! without a word here), answers `--help` with what it is and how to use it, exits 0, and starts
//! nothing; an argument it does not take is refused with exit 2 instead of being ignored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{bin_dir, workspace};

mod support;

/// The workspace's binaries, by name.
fn binaries() -> Vec<String> {
    let metadata = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(metadata.status.success(), "{}", String::from_utf8_lossy(&metadata.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let mut names = Vec::new();
    for package in metadata["packages"].as_array().unwrap() {
        for target in package["targets"].as_array().unwrap() {
            if target["kind"].as_array().unwrap().iter().any(|kind| kind == "bin") {
                names.push(target["name"].as_str().unwrap().to_string());
            }
        }
    }
    names.sort();
    names
}

/// `binary args` run to its end, which must come within 10 s (a binary that started serving
/// instead would not end): its exit code, standard output and standard error.
fn run(binary: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(bin_dir().join(binary))
        .args(args)
        // Nowhere to serve, should one start anyway.
        .env("NATS_URL", "nats://127.0.0.1:1")
        .env("HTTP_ADDR", "127.0.0.1:1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary}: {e}"));
    let began = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if began.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{binary} {args:?} did not end: it started instead of answering");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.code(), text(output.stdout), text(output.stderr))
}

#[test]
fn every_binary_answers_help_and_refuses_what_it_does_not_take() {
    let binaries = binaries();
    for expected in ["bench", "report", "stacks", "nats-services", "http-redis", "http-rabbitmq", "ecommerce"]
    {
        assert!(binaries.iter().any(|b| b == expected), "{expected} in {binaries:?}");
    }
    for binary in &binaries {
        for flag in ["--help", "-h"] {
            let (code, out, err) = run(binary, &[flag]);
            assert_eq!(code, Some(0), "{binary} {flag}: {err}");
            assert!(out.contains("Usage:"), "{binary} {flag} says how to use it: {out}");
            let about = out.lines().next().unwrap_or_default();
            assert!(about.len() > 20, "{binary} {flag} says what it is first: {out}");
        }
        let (code, out, _) = run(binary, &["--version"]);
        assert_eq!(code, Some(0), "{binary} --version");
        assert!(out.chars().any(|c| c.is_ascii_digit()), "{binary} --version: {out}");

        let (code, _, err) = run(binary, &["--no-such-option"]);
        assert_eq!(code, Some(2), "{binary} refuses an option it does not take: {err}");
        assert!(err.contains("--no-such-option"), "{binary} names it: {err}");
    }
}
