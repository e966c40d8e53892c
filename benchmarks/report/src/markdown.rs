//! The run's summary in Markdown (for a pull request or a terminal), and the few lines the
//! command prints.

use std::fmt::Write;
use std::path::Path;

use crate::analysis::{self, Pairing};
use crate::context::Context;

/// `summary.md`: the headline table per scenario, expectations, regressions and warnings.
pub fn summary(c: &Context<'_>) -> String {
    let r = c.results;
    let mut out = String::new();
    let _ = writeln!(out, "# natsrpc benchmark, {}\n", r.started);
    let _ = writeln!(
        out,
        "Commit `{}`{}, {} cores ({}), {} repetition(s) per stack, stacks in a shuffled order.\n",
        r.environment.git_commit.get(..10).unwrap_or_default(),
        if r.environment.git_dirty { " with uncommitted changes" } else { "" },
        r.environment.cores,
        r.environment.cpu_model,
        r.settings.repetitions
    );
    for scenario in &r.scenarios {
        let _ =
            writeln!(out, "## {} ({})\n\n{}\n", scenario.name, scenario.load.label(), scenario.description);
        let _ = writeln!(
            out,
            "| # | stack | answers/s (min..max) | vs fastest | p50 ms | p99 ms | unexpected | CPU ms/1k req |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for (i, ranked) in analysis::ranking(scenario).iter().enumerate() {
            let s = &ranked.stack.summary;
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} ({:.0}..{:.0}) | {:.2}x | {:.2} | {:.2} | {:.3}% | {:.1} |",
                i + 1,
                ranked.stack.name,
                s.rps.median,
                s.rps.min,
                s.rps.max,
                ranked.ratio,
                s.p50_us.median / 1000.0,
                s.p99_us.median / 1000.0,
                s.unexpected_rate.median * 100.0,
                s.cpu_ms_per_1000.median
            );
        }
        out.push('\n');
        let notes: Vec<String> = scenario.stacks.iter().filter_map(crate::scenario_views::note).collect();
        for note in &notes {
            let _ = writeln!(out, "- {note}");
        }
        if !notes.is_empty() {
            out.push('\n');
        }
    }
    let resilience = analysis::resilience(r);
    if !resilience.is_empty() {
        let _ = writeln!(out, "## Under injected errors (error_resilience beside baseline)\n");
        let _ = writeln!(
            out,
            "| stack | baseline answers/s | under faults | kept | successes/s kept | p99 baseline ms | under faults | added |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for row in &resilience {
            let _ = writeln!(out, "| {} | {} |", row.stack, row.figures().join(" | "));
        }
        out.push('\n');
    }
    for pairing in [Pairing::Validation, Pairing::Security] {
        let rows = analysis::pair_costs(r, pairing);
        if rows.is_empty() {
            continue;
        }
        let (title, without, timed) = match pairing {
            Pairing::Validation => (
                "What validation costs end to end (each stack beside its build without validation)",
                "without validation",
                " validation µs/request (timed) |",
            ),
            Pairing::Security => (
                "What security costs end to end (each secured variant, TLS and passwords to its own brokers, beside its plain stack)",
                "plain",
                "",
            ),
        };
        let _ = writeln!(out, "## {title}\n");
        let _ = writeln!(
            out,
            "| scenario | stack | answers/s | {without} | with/without | p50 ms | {without} | p99 ms | {without} | + CPU µs/request |{timed}"
        );
        let columns = rows.first().map_or(0, |row| row.figures().len());
        let _ = writeln!(out, "|---|---|{}", "---|".repeat(columns));
        for row in &rows {
            let _ = writeln!(out, "| {} | {} | {} |", row.scenario, row.with, row.figures().join(" | "));
        }
        out.push('\n');
    }
    if !r.expectations.is_empty() {
        let missed: Vec<_> = r.expectations.iter().filter(|e| !e.held).collect();
        if missed.is_empty() {
            let _ = writeln!(out, "**All {} performance expectations held.**\n", r.expectations.len());
        } else {
            let _ = writeln!(out, "**{} performance expectation(s) missed:**\n", missed.len());
            for e in missed {
                let _ = writeln!(out, "- {}", e.describe());
            }
            out.push('\n');
        }
    }
    if c.baseline.is_some() {
        let regressions: Vec<_> = c.deltas.iter().filter(|d| d.regression).collect();
        if regressions.is_empty() {
            let _ = writeln!(
                out,
                "No regression against the baseline (tolerance {:.0}%, beyond the noise).\n",
                c.tolerance * 100.0
            );
        } else {
            let _ = writeln!(out, "**{} regression(s) against the baseline:**\n", regressions.len());
            for d in regressions {
                let _ = writeln!(
                    out,
                    "- {} on {}: {} {:.2} -> {:.2} ({:+.1}%, noise ±{:.1}%)",
                    d.scenario,
                    d.stack,
                    d.figure,
                    d.before,
                    d.after,
                    d.change * 100.0,
                    d.noise * 100.0
                );
            }
            out.push('\n');
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(out, "Warnings:\n");
        for w in &r.warnings {
            let _ = writeln!(out, "- {w}");
        }
    }
    out
}

/// What the command prints: the winner of each scenario, the verdicts, and where the page is.
pub fn terminal(c: &Context<'_>, page: &Path) -> String {
    let mut out = String::new();
    for scenario in &c.results.scenarios {
        let ranking = analysis::ranking(scenario);
        let line: Vec<String> = ranking
            .iter()
            .map(|r| format!("{} {:.0}/s ({:.2}x)", r.stack.name, r.stack.summary.rps.median, r.ratio))
            .collect();
        let _ = writeln!(out, "{:<20} {}", scenario.name, line.join(" > "));
    }
    let missed = c.results.expectations.iter().filter(|e| !e.held).count();
    let regressions = c.deltas.iter().filter(|d| d.regression).count();
    let _ = writeln!(
        out,
        "expectations: {} held, {missed} missed; baseline: {}",
        c.results.expectations.len() - missed,
        if c.baseline.is_none() { "none".to_string() } else { format!("{regressions} regression(s)") }
    );
    let _ = writeln!(out, "report: {}", page.display());
    out
}
