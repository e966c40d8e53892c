//! What the run ran on: CPU, cores, kernel, memory, broker versions, the commit.

use std::process::Command;

use bench_results::Environment;

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

fn first_program(names: &[&str]) -> String {
    names
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map_or_else(|| names[0].to_string(), |p| p.to_string())
}

/// Reads the machine and software of this run off this machine.
pub fn read() -> Environment {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let git = |args: &[&str]| output("git", args);
    Environment {
        cpu_model,
        cores: online_cores(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        memory_gib: memory_kib / (1024.0 * 1024.0),
        nats_server: output(&first_program(&["/usr/sbin/nats-server", "nats-server"]), &["--version"]),
        redis_server: output(&first_program(&["/usr/bin/redis-server", "redis-server"]), &["--version"]),
        rabbitmq_server: output("dpkg-query", &["-W", "-f=${Version}", "rabbitmq-server"]),
        rustc: output("rustc", &["--version"]),
        git_commit: git(&["rev-parse", "HEAD"]),
        git_dirty: Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty()),
    }
}

/// The machine's cores, not this process's share: the load generator may be placed on a few of them
/// (`generator_cpus`), which `available_parallelism` would report instead.
fn online_cores() -> usize {
    let counted = std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| info.lines().filter(|line| line.starts_with("processor")).count())
        .unwrap_or(0);
    if counted > 0 { counted } else { std::thread::available_parallelism().map_or(1, |n| n.get()) }
}
