//! CPU time and memory of processes, from `/proc` (Linux).

use std::time::Duration;

/// Linux reports CPU times in clock ticks of `USER_HZ`, which is 100 on every mainstream architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user + system) a process has used so far, or `None` when it is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) / TICKS_PER_SECOND))
}

/// Resident set size in bytes, or `None` when the process is gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Processes whose command name is `name` (such as `nats-server`).
pub fn pids_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .collect()
}

/// CPU used by a set of processes between two readings.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    start: Vec<(u32, Duration)>,
}

impl CpuMeter {
    /// Starts measuring `pids`.
    pub fn start(pids: &[u32]) -> Self {
        Self { start: pids.iter().map(|&pid| (pid, cpu_time(pid).unwrap_or_default())).collect() }
    }

    /// CPU seconds used since the start, by all of them together.
    pub fn elapsed(&self) -> Duration {
        self.start.iter().map(|&(pid, start)| cpu_time(pid).unwrap_or(start).saturating_sub(start)).sum()
    }
}

/// Whether `pid` runs (a zombie, exited but not reaped, counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_time_and_rss() {
        let me = std::process::id();
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(cpu_time(me).is_some());
        assert!(rss_bytes(me).is_some_and(|rss| rss > 1024 * 1024));
        assert!(cpu_time(u32::MAX).is_none());
    }
}
