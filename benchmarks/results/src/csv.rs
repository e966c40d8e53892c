//! The CSV exports of a run, for spreadsheets: `summary.csv` (one row per measurement),
//! `endpoints.csv`, `intervals.csv` and `steps.csv`.

use std::io::Write;
use std::path::Path;

use crate::{ResultsError, RunResults};

/// Writes the four files into `dir`.
pub(crate) fn write(results: &RunResults, dir: &Path) -> Result<(), ResultsError> {
    let create = |name: &str| {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .map(std::io::BufWriter::new)
            .map_err(|source| ResultsError::Io { path, source })
    };
    let io = |source: std::io::Error| ResultsError::Io { path: dir.to_path_buf(), source };
    let mut summary = create("summary.csv")?;
    writeln!(summary, "scenario,stack,repetition,position,load_model,duration_s,target_rps,sent,dropped,answered,achieved_rps,ok,expected_errors,unexpected_errors,p50_us,p90_us,p99_us,p999_us,max_us,service_p50_us,service_p99_us,lag_p99_us,stack_cpu_s,brokers_cpu_s,generator_cpu_s,cpu_ms_per_1000,requests_per_cpu_second").map_err(io)?;
    let mut endpoints = create("endpoints.csv")?;
    writeln!(endpoints, "scenario,stack,repetition,endpoint,mean_body_bytes,answered,ok,expected_errors,unexpected_errors,p50_us,p99_us,p999_us,max_us").map_err(io)?;
    let mut intervals = create("intervals.csv")?;
    writeln!(intervals, "scenario,stack,repetition,t_s,answered,rps,unexpected,p50_us,p99_us,max_us")
        .map_err(io)?;
    let mut steps = create("steps.csv")?;
    writeln!(steps, "scenario,stack,repetition,target_rps,achieved_rps,p50_us,p99_us,unexpected")
        .map_err(io)?;
    for scenario in &results.scenarios {
        for stack in &scenario.stacks {
            for m in &stack.repetitions {
                let (s, k, r) = (&scenario.name, &stack.name, m.repetition);
                let l = &m.latency_us;
                writeln!(
                    summary,
                    "{s},{k},{r},{},{},{:.3},{},{},{},{},{:.1},{},{},{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.2},{:.0}",
                    m.position,
                    m.load_model,
                    m.duration_s,
                    m.target_rps.map(|t| format!("{t:.1}")).unwrap_or_default(),
                    m.sent,
                    m.dropped,
                    m.answered,
                    m.achieved_rps,
                    m.ok,
                    m.expected_errors.values().sum::<u64>(),
                    m.unexpected_errors.values().sum::<u64>(),
                    l.p50,
                    l.p90,
                    l.p99,
                    l.p999,
                    l.max,
                    m.service_time_us.p50,
                    m.service_time_us.p99,
                    m.dispatch_lag_us.p99,
                    m.cpu.stack_s,
                    m.cpu.brokers_s,
                    m.cpu.generator_s,
                    m.cpu.ms_per_1000_requests,
                    m.cpu.requests_per_cpu_second
                )
                .map_err(io)?;
                for e in &m.endpoints {
                    writeln!(
                        endpoints,
                        "{s},{k},{r},{},{},{},{},{},{},{},{},{},{}",
                        e.name,
                        e.mean_body_bytes,
                        e.answered,
                        e.ok,
                        e.expected_errors.values().sum::<u64>(),
                        e.unexpected_errors.values().sum::<u64>(),
                        e.latency_us.p50,
                        e.latency_us.p99,
                        e.latency_us.p999,
                        e.latency_us.max
                    )
                    .map_err(io)?;
                }
                for i in &m.intervals {
                    writeln!(
                        intervals,
                        "{s},{k},{r},{:.1},{},{:.1},{},{},{},{}",
                        i.t_s, i.answered, i.rps, i.unexpected, i.p50_us, i.p99_us, i.max_us
                    )
                    .map_err(io)?;
                }
                for st in &m.steps {
                    writeln!(
                        steps,
                        "{s},{k},{r},{:.1},{:.1},{},{},{}",
                        st.target_rps, st.achieved_rps, st.p50_us, st.p99_us, st.unexpected
                    )
                    .map_err(io)?;
                }
            }
        }
    }
    for mut file in [summary, endpoints, intervals, steps] {
        file.flush().map_err(io)?;
    }
    Ok(())
}
