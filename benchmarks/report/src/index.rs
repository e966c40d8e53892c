//! `reports/index.html`: every run on disk, newest first, with the trend of the headline figures
//! (throughput and p99 per stack, in each run's first scenario of the same name) across runs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::charts::{self, Series};
use crate::text::escape;
use bench_results::RunResults;

/// The index page of the runs under `reports/runs`.
pub fn page(reports: &Path) -> String {
    let mut runs: Vec<(PathBuf, RunResults)> = std::fs::read_dir(reports.join("runs"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter_map(|dir| RunResults::read(&dir.join("results.json")).ok().map(|r| (dir, r)))
                .collect()
        })
        .unwrap_or_default();
    runs.sort_by(|a, b| a.0.cmp(&b.0));

    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>natsrpc benchmark runs</title><style>body{{font-family:system-ui,sans-serif;max-width:1080px;margin:0 auto;padding:1.5rem}}table{{border-collapse:collapse}}td,th{{padding:.3rem .6rem;border-bottom:1px solid #e5e5ea;text-align:left}}svg{{max-width:100%;height:auto}}</style></head><body><h1>natsrpc benchmark runs</h1><p>{} run(s) on disk, newest first. Each run's own page has its details.</p>",
        runs.len()
    );

    // Trends: per scenario that several runs share, per stack.
    let mut by_scenario: BTreeMap<&str, (Vec<Series>, Vec<Series>)> = BTreeMap::new();
    for (i, (_, run)) in runs.iter().enumerate() {
        for scenario in &run.scenarios {
            let (rps, p99) = by_scenario.entry(scenario.name.as_str()).or_default();
            for stack in &scenario.stacks {
                let push = |all: &mut Vec<Series>, y: f64| match all
                    .iter_mut()
                    .find(|s| s.label == stack.name)
                {
                    Some(series) => series.points.push((i as f64 + 1.0, y)),
                    None => all.push(Series { label: stack.name.clone(), points: vec![(i as f64 + 1.0, y)] }),
                };
                push(rps, stack.summary.rps.median);
                push(p99, stack.summary.p99_us.median / 1000.0);
            }
        }
    }
    for (scenario, (rps, p99)) in &by_scenario {
        if rps.iter().all(|s| s.points.len() < 2) {
            continue;
        }
        let _ = write!(
            out,
            "<h2>Trend: {}</h2><figure>{}</figure><figure>{}</figure>",
            escape(scenario),
            charts::lines(
                &format!("{scenario}: throughput across runs"),
                "run (oldest = 1)",
                "answers/s (median)",
                rps,
                &[]
            ),
            charts::lines_log(
                &format!("{scenario}: p99 latency across runs"),
                "run (oldest = 1)",
                "p99, ms (median)",
                p99,
                None
            )
        );
    }

    out.push_str("<h2>Runs</h2><table><thead><tr><th>#</th><th>run</th><th>commit</th><th>profile</th><th>scenarios</th><th>headline (first scenario, answers/s)</th><th>expectations</th></tr></thead><tbody>");
    for (i, (dir, run)) in runs.iter().enumerate().rev() {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let headline = run.scenarios.first().map_or_else(String::new, |s| {
            let mut stacks: Vec<_> = s.stacks.iter().collect();
            stacks.sort_by(|a, b| b.summary.rps.median.total_cmp(&a.summary.rps.median));
            stacks
                .iter()
                .map(|k| format!("{} {:.0}", k.name, k.summary.rps.median))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let missed = run.expectations.iter().filter(|e| !e.held).count();
        let page = dir.join("index.html");
        let link = if page.exists() {
            format!("<a href=\"runs/{0}/index.html\">{0}</a>", escape(&name))
        } else {
            escape(&name)
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{link}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            escape(run.environment.git_commit.get(..10).unwrap_or_default()),
            escape(run.profile.as_deref().unwrap_or("default")),
            escape(&run.scenarios.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")),
            escape(&headline),
            if missed == 0 { "held".to_string() } else { format!("{missed} missed") }
        );
    }
    out.push_str("</tbody></table></body></html>\n");
    out
}
