//! The run's page: verdicts first, then where the time goes, each scenario's charts with their
//! numbers, the comparison with the baseline, and the honesty section. One file, inline CSS and
//! SVG, no script, nothing fetched: it opens offline from disk and prints.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::analysis::{self, Pairing};
use crate::charts::{self, Bar, Series, dot};
use crate::context::Context;
use crate::text::{escape, ms};
use bench_results::{ErrorKind, RunResults, ScenarioResult};

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1080px; padding: 1.5rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.4rem; border-bottom: 2px solid #e5e5ea; padding-bottom: .2rem; }
h3 { margin-top: 1.6rem; } .sub { color: #6e6e73; margin-top: 0; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .9rem; } th, td { padding: .3rem .6rem; border-bottom: 1px solid #e5e5ea; text-align: right; }
th:first-child, td:first-child, td.l, th.l { text-align: left; } thead th { background: #f5f5f7; }
td:has(.dot) { white-space: nowrap; } td .ok, td .bad { white-space: nowrap; font-size: .85rem; }
nav { font-size: .9rem; margin: .6rem 0 1rem; } nav a { margin-right: .8rem; color: #0969da; text-decoration: none; }
.dot { display: inline-block; width: .7rem; height: .7rem; border-radius: 50%; margin-right: .4rem; vertical-align: middle; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #cf222e; font-weight: 600; } .warn { color: #9a6700; }
.card { border: 1px solid #e5e5ea; border-radius: 10px; padding: .8rem 1rem; margin: 1rem 0; }
.verdict { font-size: 1.05rem; } .missing { color: #6e6e73; font-style: italic; }
figure { margin: 1rem 0 .2rem; } details { font-size: .8rem; max-width: 28rem; } summary { cursor: pointer; color: #0969da; } svg { max-width: 100%; height: auto; }
code { background: #f5f5f7; padding: 0 .25rem; border-radius: 4px; }
@media print { body { max-width: none; } h2 { break-before: page; } figure, table { break-inside: avoid; } }
"#;

/// The whole page.
pub fn page(c: &Context<'_>) -> String {
    let r = c.results;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>natsrpc benchmark {}</title><style>{STYLE}</style></head><body>",
        escape(&r.started)
    );
    let _ = write!(
        out,
        "<h1>natsrpc comparison benchmark</h1><p class=\"sub\">Run of {} · commit <code>{}</code>{} · {} cores, {} · {}</p>",
        escape(&r.started),
        escape(r.environment.git_commit.get(..10).unwrap_or(&r.environment.git_commit)),
        if r.environment.git_dirty { " (with uncommitted changes)" } else { "" },
        r.environment.cores,
        escape(&r.environment.cpu_model),
        r.profile
            .as_deref()
            .map_or_else(|| "default profile".to_string(), |p| format!("profile {}", escape(p)))
    );
    out.push_str("<nav><a href=\"#verdict\">Verdict</a><a href=\"#where\">Where the time goes</a>");
    if !analysis::resilience(r).is_empty() {
        out.push_str("<a href=\"#under-faults\">Under injected errors</a>");
    }
    if !analysis::pair_costs(r, Pairing::Validation).is_empty() {
        out.push_str("<a href=\"#validation-cost\">What validation costs</a>");
    }
    if !analysis::pair_costs(r, Pairing::Security).is_empty() {
        out.push_str("<a href=\"#security-cost\">What security costs</a>");
    }
    for scenario in &r.scenarios {
        let _ = write!(out, "<a href=\"#scenario-{0}\">{0}</a>", escape(&scenario.name));
    }
    out.push_str("<a href=\"#baseline-comparison\">Against the baseline</a><a href=\"#method\">How this was measured</a></nav>");
    verdicts(&mut out, c);
    where_time_goes(&mut out, r);
    under_faults(&mut out, r);
    pair_cost(&mut out, r, Pairing::Validation);
    pair_cost(&mut out, r, Pairing::Security);
    for scenario in &r.scenarios {
        scenario_section(&mut out, scenario, r.environment.cores);
    }
    baseline_section(&mut out, c);
    criterion_section(&mut out, c);
    honesty(&mut out, r);
    out.push_str("</body></html>\n");
    out
}

/// An expectation's metric, as the verdict table names it.
fn short(metric: &str) -> String {
    match metric {
        "max_unexpected_error_rate" => "errors".into(),
        "min_rps" => "throughput".into(),
        other => other.replacen("_ms", "", 1),
    }
}

fn verdicts(out: &mut String, c: &Context<'_>) {
    out.push_str("<h2 id=\"verdict\">Verdict</h2>");
    let missed = c.results.expectations.iter().filter(|e| !e.held).count();
    let regressions = c.deltas.iter().filter(|d| d.regression).count();
    let _ = write!(
        out,
        "<div class=\"card verdict\">{} · {}</div>",
        if missed == 0 {
            format!(
                "<span class=\"ok\">All {} performance expectations held</span>",
                c.results.expectations.len()
            )
        } else {
            format!("<span class=\"bad\">{missed} performance expectation(s) missed</span>")
        },
        match c.baseline {
            None => "no baseline run to compare with".to_string(),
            Some(_) if regressions == 0 =>
                "<span class=\"ok\">no regression against the baseline</span>".to_string(),
            Some(_) => format!("<span class=\"bad\">{regressions} regression(s) against the baseline</span>"),
        }
    );
    for scenario in &c.results.scenarios {
        let _ = write!(
            out,
            "<h3>{} <small class=\"sub\">({})</small></h3><p class=\"sub\">{}{}</p>",
            escape(&scenario.name),
            scenario.load.label(),
            escape(&scenario.description),
            if matches!(scenario.load, bench_results::Load::Stepped { .. }) {
                " Answers per second are those of the highest step each stack sustained: answered at \
                 the offered rate, with few errors and its p99 near the unloaded one (the \
                 scenario's <code>sustained</code> thresholds)."
            } else {
                ""
            }
        );
        out.push_str("<table><thead><tr><th>#</th><th class=\"l\">stack</th><th>answers/s (median)</th><th>min..max</th><th>vs fastest</th><th>p50 ms</th><th>p99 ms</th><th>unexpected</th><th>CPU ms / 1k req</th><th class=\"l\">expectations</th></tr></thead><tbody>");
        for (i, ranked) in analysis::ranking(scenario).iter().enumerate() {
            let s = &ranked.stack.summary;
            let checks: Vec<String> = c
                .results
                .expectations
                .iter()
                .filter(|e| e.scenario == scenario.name && e.stack == ranked.stack.name)
                .map(|e| {
                    if e.held {
                        format!("<span class=\"ok\">✓ {}</span>", escape(&short(&e.metric)))
                    } else {
                        let by = if e.limit == 0.0 {
                            String::new()
                        } else {
                            format!(" by {:.0}%", ((e.value - e.limit) / e.limit).abs() * 100.0)
                        };
                        format!(
                            "<span class=\"bad\">{} missed{by} ({:.3} vs {:.3})</span>",
                            escape(&e.metric),
                            e.value,
                            e.limit
                        )
                    }
                })
                .collect();
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"l\">{}</td><td>{:.0}</td><td>{:.0}..{:.0}</td><td>{:.2}x</td><td>{}</td><td>{}</td><td>{:.3}%</td><td>{:.1}</td><td class=\"l\">{}</td></tr>",
                i + 1,
                dot(&ranked.stack.name),
                s.rps.median,
                s.rps.min,
                s.rps.max,
                ranked.ratio,
                ms(s.p50_us.median),
                ms(s.p99_us.median),
                s.unexpected_rate.median * 100.0,
                s.cpu_ms_per_1000.median,
                if checks.is_empty() { "-".to_string() } else { checks.join(", ") }
            );
        }
        out.push_str("</tbody></table>");
    }
}

/// Each stack's `error_resilience` beside its `baseline`: what it kept of its throughput, what the
/// faults added to its p99.
fn under_faults(out: &mut String, r: &RunResults) {
    let rows = analysis::resilience(r);
    if rows.is_empty() {
        return;
    }
    out.push_str("<h2 id=\"under-faults\">Under injected errors</h2><p>Each stack's <code>error_resilience</code> (the same mix and users as <code>baseline</code>, with invalid requests and the services' faults on: declines, transient payment failures, stock-outs, internal errors, added latency) beside its <code>baseline</code>: the answers and the successes per second it kept, and what the faults added to its p99. The invalid requests and injected failures are answered as errors, so successes fall by their share even on a stack that loses nothing; the added latency is partly the faults' own.</p><table><thead><tr><th class=\"l\">stack</th><th>baseline answers/s</th><th>under faults</th><th>kept</th><th>successes/s kept</th><th>p99 baseline, ms</th><th>under faults</th><th>added</th></tr></thead><tbody>");
    for row in &rows {
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td></tr>",
            dot(&row.stack),
            row.figures().join("</td><td>")
        );
    }
    out.push_str("</tbody></table>");
}

/// Each stack beside its copy without one choice: what validation costs end to end (next to the
/// time the services themselves measure validating), or what TLS and passwords cost.
fn pair_cost(out: &mut String, r: &RunResults, pairing: Pairing) {
    let rows = analysis::pair_costs(r, pairing);
    if rows.is_empty() {
        return;
    }
    let (id, title, intro, columns) = match pairing {
        Pairing::Validation => (
            "validation-cost",
            "What validation costs end to end",
            "Each stack beside its control: the same services, stores and transport, built without validation (a benchmark-only build, never a runtime switch), under the same valid requests. The throughput kept, the latency and the CPU per request it adds are what validation costs a whole request, on a machine where the service shares its cores with the broker and the load generator; the last column is the time the services themselves measured validating each request.",
            ["without validation", "<th>validation per request, µs (timed)</th>"],
        ),
        Pairing::Security => (
            "security-cost",
            "What security costs end to end",
            "Each secured variant beside the stack it copies: the same services and stores, with every connection to every broker over TLS and authenticated by a password, on brokers of its own that the runner starts (TLS only, certificates from a CA made for the run). The throughput kept, the latency and the CPU per request it adds (the stack's and its brokers', TLS on both ends) are what security costs a whole request here. The plain stacks use the machine's long-running shared brokers and the variants fresh ones of their own: a difference of a few percent either way is not TLS.",
            ["plain", ""],
        ),
    };
    let _ = write!(
        out,
        "<h2 id=\"{id}\">{title}</h2><p>{intro}</p><table><thead><tr><th class=\"l\">scenario</th><th class=\"l\">stack</th><th>answers/s</th><th>{0}</th><th>with / without</th><th>p50, ms</th><th>{0}</th><th>p99, ms</th><th>{0}</th><th>+ CPU per request, µs</th>{1}</tr></thead><tbody>",
        columns[0], columns[1]
    );
    for row in &rows {
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td></tr>",
            escape(&row.scenario),
            dot(&row.with),
            row.figures().join("</td><td>")
        );
    }
    out.push_str("</tbody></table>");
}

fn where_time_goes(out: &mut String, r: &RunResults) {
    out.push_str("<h2 id=\"where\">Where the time goes</h2><p>Each line compares two stacks that differ in one choice only, in the first closed-loop scenario that ran both; the difference is what that choice costs per request here (median latency, and CPU of the stack and its brokers).</p>");
    let scenario = r
        .scenarios
        .iter()
        .filter(|s| matches!(s.load, bench_results::Load::Closed { .. }))
        .max_by_key(|s| analysis::breakdown(s).len());
    let Some(scenario) = scenario else {
        out.push_str("<p class=\"missing\">No closed-loop scenario in this run.</p>");
        return;
    };
    let parts = analysis::breakdown(scenario);
    if parts.is_empty() {
        out.push_str("<p class=\"missing\">The control stacks were not part of this run.</p>");
    } else {
        let _ = write!(
            out,
            "<p class=\"sub\">From scenario <b>{}</b>.</p><table><thead><tr><th class=\"l\">choice</th><th class=\"l\">with</th><th class=\"l\">without</th><th>+ median latency, ms</th><th>+ CPU per request, µs</th></tr></thead><tbody>",
            escape(&scenario.name)
        );
        for p in &parts {
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:+.2}</td><td>{:+.1}</td></tr>",
                escape(&p.what),
                dot(&p.with),
                dot(&p.without),
                p.latency_ms,
                p.cpu_us
            );
        }
        out.push_str("</tbody></table>");
        let bars: Vec<Bar> = parts
            .iter()
            .map(|p| Bar {
                label: format!("{} - {}", p.with, p.without),
                colour: p.with.clone(),
                value: p.cpu_us.max(0.0),
                range: None,
            })
            .collect();
        let _ = write!(
            out,
            "<figure>{}</figure>",
            charts::bars("Extra CPU per request of each choice (stack and brokers)", "µs per request", &bars)
        );
    }
    // Per stack: where a request's CPU goes (its processes, its brokers, the load generator that
    // shares the machine), and the part of the service's time that validation takes.
    let _ = write!(
        out,
        "<p class=\"sub\">CPU per request in <b>{}</b>, by who spends it; validation from the services' own stats.</p><table><thead><tr><th class=\"l\">stack</th><th>stack processes, µs</th><th>brokers, µs</th><th>load generator, µs</th><th>validation per request, µs</th><th>share of the service's time</th></tr></thead><tbody>",
        escape(&scenario.name)
    );
    for stack in &scenario.stacks {
        let split = analysis::cpu_split(stack).map_or_else(
            || "<td colspan=\"3\" class=\"missing\">nothing answered</td>".to_string(),
            |c| {
                format!(
                    "<td>{:.1}</td><td>{:.1}</td><td>{:.1}</td>",
                    c.stack_us, c.brokers_us, c.generator_us
                )
            },
        );
        let validation = analysis::validation_per_request(stack).map_or_else(
            || "<td colspan=\"2\" class=\"missing\">not reported by this stack</td>".to_string(),
            |(us, share)| format!("<td>{us:.2}</td><td>{:.1}%</td>", share * 100.0),
        );
        let _ = write!(out, "<tr><td class=\"l\">{}</td>{split}{validation}</tr>", dot(&stack.name));
    }
    out.push_str("</tbody></table>");
}

/// A scenario's section: what it is, then each view in the order a reader asks: how fast, how slow
/// at the tail and over time, what only this scenario shows, where it saturates, what failed, and
/// what it cost in CPU, memory and validation.
fn scenario_section(out: &mut String, scenario: &ScenarioResult, cores: usize) {
    let _ = write!(
        out,
        "<h2 id=\"scenario-{0}\">{0}</h2><p>{1} · {2}",
        escape(&scenario.name),
        escape(&scenario.description),
        scenario.load.label()
    );
    let mix: Vec<String> =
        scenario.mix.iter().map(|m| format!("{} {:.0}", escape(&m.label()), m.weight)).collect();
    let _ = write!(out, " · mix: {}", mix.join(", "));
    let flows: Vec<String> = scenario
        .flows
        .iter()
        .map(|f| format!("{} ({} steps) {:.0}", escape(&f.name), f.steps.len(), f.weight))
        .collect();
    if !flows.is_empty() {
        let _ = write!(out, " · flows: {}", flows.join(", "));
    }
    if scenario.invalid_share > 0.0 {
        let _ = write!(out, " · {:.0}% invalid", scenario.invalid_share * 100.0);
    }
    out.push_str("</p>");
    throughput(out, scenario);
    latency_spectrum(out, scenario);
    over_time(out, scenario);
    crate::scenario_views::views(out, scenario, cores);
    saturation(out, scenario);
    errors(out, scenario);
    cpu(out, scenario);
    memory(out, scenario);
    validation(out, scenario);
}

/// Throughput: the median of the repetitions, with their range.
fn throughput(out: &mut String, scenario: &ScenarioResult) {
    let ranking = analysis::ranking(scenario);
    let bars: Vec<Bar> = ranking
        .iter()
        .map(|r| Bar {
            label: r.stack.name.clone(),
            colour: r.stack.name.clone(),
            value: r.stack.summary.rps.median,
            range: Some((r.stack.summary.rps.min, r.stack.summary.rps.max)),
        })
        .collect();
    let _ = write!(
        out,
        "<figure>{}</figure>",
        charts::bars("Throughput (median of repetitions; whiskers: min..max)", "answers per second", &bars)
    );
}

/// The latency spectrum, p50 to p99.99, and its table.
fn latency_spectrum(out: &mut String, scenario: &ScenarioResult) {
    let quantiles = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9"), (0.9999, "p99.99")];
    let spectrum: Vec<Series> = scenario
        .stacks
        .iter()
        .filter_map(|s| {
            let m = analysis::representative(s)?;
            let l = &m.latency_us;
            let values = [l.p50, l.p90, l.p99, l.p999, l.p9999];
            Some(Series {
                label: s.name.clone(),
                points: quantiles
                    .iter()
                    .zip(values)
                    .map(|((q, _), v)| (-(1.0f64 - q).log10(), v as f64 / 1000.0))
                    .collect(),
            })
        })
        .collect();
    let label = |x: f64| {
        quantiles
            .iter()
            .find(|(q, _)| (-(1.0f64 - q).log10() - x).abs() < 0.05)
            .map_or_else(String::new, |(_, n)| n.to_string())
    };
    let _ = write!(
        out,
        "<figure>{}</figure>",
        charts::lines_log(
            "Latency by percentile (log scale)",
            "percentile",
            "latency, ms",
            &spectrum,
            Some(&label)
        )
    );
    out.push_str("<table><thead><tr><th class=\"l\">stack</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th><th>service p99</th></tr></thead><tbody>");
    for s in &scenario.stacks {
        if let Some(m) = analysis::representative(s) {
            let l = &m.latency_us;
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                dot(&s.name),
                ms(l.p50 as f64),
                ms(l.p90 as f64),
                ms(l.p99 as f64),
                ms(l.p999 as f64),
                ms(l.p9999 as f64),
                ms(l.max as f64),
                ms(m.service_time_us.p99 as f64)
            );
        }
    }
    out.push_str("</tbody></table><p class=\"sub\">Milliseconds, from the repetition with the median p99. In open-loop scenarios latency counts from each request's planned time.</p>");
}

/// p99 per second over the run: a stall shows as a spike.
fn over_time(out: &mut String, scenario: &ScenarioResult) {
    let over_time: Vec<Series> = scenario
        .stacks
        .iter()
        .filter_map(|s| {
            let m = analysis::representative(s)?;
            Some(Series {
                label: s.name.clone(),
                points: m
                    .intervals
                    .iter()
                    .filter(|i| i.answered > 0)
                    .map(|i| (i.t_s, i.p99_us as f64 / 1000.0))
                    .collect(),
            })
        })
        .collect();
    let _ = write!(
        out,
        "<figure>{}</figure>",
        charts::lines_log(
            "p99 latency over the run, per second (a stall shows as a spike)",
            "time, s",
            "p99 latency, ms",
            &over_time,
            None
        )
    );
}

/// The saturation curve of a stepped load, and each stack's knee.
fn saturation(out: &mut String, scenario: &ScenarioResult) {
    if scenario.stacks.iter().any(|s| s.repetitions.iter().any(|m| !m.steps.is_empty())) {
        let mut knees = Vec::new();
        let curves: Vec<Series> = scenario
            .stacks
            .iter()
            .filter_map(|s| {
                let m = analysis::representative(s)?;
                if let Some((rate, p99)) = analysis::knee(m) {
                    knees.push((format!("{} knee", s.name), (rate, p99)));
                }
                Some(Series {
                    label: s.name.clone(),
                    points: m.steps.iter().map(|st| (st.target_rps, st.p99_us as f64 / 1000.0)).collect(),
                })
            })
            .collect();
        let _ = write!(
            out,
            "<figure>{}</figure>",
            charts::lines_log(
                "Saturation: p99 latency against offered rate",
                "offered, requests/s",
                "p99 latency, ms",
                &curves,
                None
            )
        );
        let achieved: Vec<Series> = scenario
            .stacks
            .iter()
            .filter_map(|s| {
                let m = analysis::representative(s)?;
                Some(Series {
                    label: s.name.clone(),
                    points: m.steps.iter().map(|st| (st.target_rps, st.achieved_rps)).collect(),
                })
            })
            .collect();
        let marks: Vec<(String, (f64, f64))> = knees
            .iter()
            .filter_map(|(label, (rate, _))| {
                let stack = label.trim_end_matches(" knee");
                let series = achieved.iter().find(|s| s.label == stack)?;
                let y = series.points.iter().find(|p| p.0 == *rate)?.1;
                Some((label.clone(), (*rate, y)))
            })
            .collect();
        let _ = write!(
            out,
            "<figure>{}</figure>",
            charts::lines(
                "Saturation: achieved against offered rate (circles: the knee)",
                "offered, requests/s",
                "achieved, answers/s",
                &achieved,
                &marks
            )
        );
        out.push_str("<table><thead><tr><th class=\"l\">stack</th><th>knee at offered req/s</th><th>p99 there, ms</th><th>sustained req/s</th><th>best achieved req/s</th></tr></thead><tbody>");
        for s in &scenario.stacks {
            if let Some(m) = analysis::representative(s) {
                let best = m.steps.iter().map(|st| st.achieved_rps).fold(0.0, f64::max);
                let sustained = m.sustained_rps();
                let (rate, p99) = analysis::knee(m)
                    .map_or(("not reached".to_string(), "-".to_string()), |(r, p)| {
                        (format!("{r:.0}"), format!("{p:.2}"))
                    });
                let _ = write!(
                    out,
                    "<tr><td class=\"l\">{}</td><td>{rate}</td><td>{p99}</td><td>{sustained:.0}</td><td>{best:.0}</td></tr>",
                    dot(&s.name)
                );
            }
        }
        out.push_str("</tbody></table>");
    }
}

/// Errors, expected and unexpected apart, with their kinds.
fn errors(out: &mut String, scenario: &ScenarioResult) {
    let names: Vec<String> = scenario.stacks.iter().map(|s| s.name.clone()).collect();
    let sum = |s: &bench_results::StackResult, unexpected: bool| -> f64 {
        s.repetitions
            .iter()
            .map(|m| if unexpected { &m.unexpected_errors } else { &m.expected_errors })
            .flat_map(|e| e.values())
            .sum::<u64>() as f64
    };
    let parts = vec![
        (
            "expected (injected)".to_string(),
            plotters::style::RGBColor(120, 160, 200),
            scenario.stacks.iter().map(|s| sum(s, false)).collect(),
        ),
        (
            "unexpected".to_string(),
            plotters::style::RGBColor(207, 34, 46),
            scenario.stacks.iter().map(|s| sum(s, true)).collect(),
        ),
    ];
    let _ = write!(
        out,
        "<figure>{}</figure>",
        charts::stacked("Errors, all repetitions: expected and unexpected apart", "errors", &names, &parts)
    );
    out.push_str("<table><thead><tr><th class=\"l\">stack</th><th>answers</th><th>expected: validation</th><th>expected: faults</th><th class=\"l\">unexpected</th><th class=\"l\">details</th></tr></thead><tbody>");
    for s in &scenario.stacks {
        let mut expected: BTreeMap<&ErrorKind, u64> = BTreeMap::new();
        let mut unexpected: BTreeMap<&ErrorKind, u64> = BTreeMap::new();
        for m in &s.repetitions {
            for (k, n) in &m.expected_errors {
                *expected.entry(k).or_default() += n;
            }
            for (k, n) in &m.unexpected_errors {
                *unexpected.entry(k).or_default() += n;
            }
        }
        let answers: u64 = s.repetitions.iter().map(|m| m.answered).sum();
        let is_validation = |k: &&&ErrorKind| matches!(k, ErrorKind::Validation(_));
        let validation: u64 = expected.iter().filter(|(k, _)| is_validation(k)).map(|(_, n)| n).sum();
        let rules = expected.keys().filter(is_validation).count();
        let faults: Vec<String> = expected
            .iter()
            .filter_map(|(k, n)| match k {
                ErrorKind::Fault(code) => Some(format!("{} {n}", escape(code))),
                _ => None,
            })
            .collect();
        let list = |all: &BTreeMap<&ErrorKind, u64>| {
            all.iter().map(|(k, n)| format!("{} {n}", escape(&k.to_string()))).collect::<Vec<_>>().join(", ")
        };
        let unexpected_text = if unexpected.is_empty() {
            "none".to_string()
        } else {
            format!("<span class=\"bad\">{}</span>", list(&unexpected))
        };
        let details = if expected.is_empty() {
            "-".to_string()
        } else {
            format!("<details><summary>every kind</summary>{}</details>", list(&expected))
        };
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{answers}</td><td>{validation} ({rules} rules)</td><td>{}</td><td class=\"l\">{unexpected_text}</td><td class=\"l\">{details}</td></tr>",
            dot(&s.name),
            if faults.is_empty() { "none".to_string() } else { faults.join(", ") }
        );
    }
    out.push_str("</tbody></table>");
}

/// CPU per request: the stack, its brokers, the load generator.
fn cpu(out: &mut String, scenario: &ScenarioResult) {
    let names: Vec<String> = scenario.stacks.iter().map(|s| s.name.clone()).collect();
    let per_1000 = |s: &bench_results::StackResult, brokers: bool| -> f64 {
        let v: Vec<f64> = s
            .repetitions
            .iter()
            .map(|m| {
                if m.answered == 0 {
                    0.0
                } else {
                    (if brokers { m.cpu.brokers_s } else { m.cpu.stack_s }) * 1e6 / m.answered as f64
                }
            })
            .collect();
        bench_results::Spread::of(v).median
    };
    let parts = vec![
        (
            "stack processes".to_string(),
            plotters::style::RGBColor(31, 119, 180),
            scenario.stacks.iter().map(|s| per_1000(s, false)).collect(),
        ),
        (
            "brokers it uses".to_string(),
            plotters::style::RGBColor(255, 187, 120),
            scenario.stacks.iter().map(|s| per_1000(s, true)).collect(),
        ),
    ];
    let _ = write!(
        out,
        "<figure>{}</figure>",
        charts::stacked(
            "CPU per 1,000 requests (median of repetitions)",
            "CPU ms per 1,000 requests",
            &names,
            &parts
        )
    );
    out.push_str("<table><thead><tr><th class=\"l\">stack</th><th>stack CPU ms / 1k</th><th>brokers CPU ms / 1k</th><th>requests per CPU-second</th><th>generator CPU share</th><th>peak RSS, MiB</th></tr></thead><tbody>");
    for s in &scenario.stacks {
        let gen_share =
            bench_results::Spread::of(s.repetitions.iter().map(|m| m.cpu.generator_s / m.duration_s)).median;
        let rss = s
            .repetitions
            .iter()
            .flat_map(|m| m.resources.iter().filter(|u| u.name == "stack").map(|u| u.rss_max_mib))
            .fold(0.0, f64::max);
        if s.external {
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td>not measured</td><td>{:.1}</td><td>not measured</td><td>{:.0}% of a core</td><td>not measured</td></tr>",
                dot(&s.name),
                per_1000(s, true),
                gen_share * 100.0
            );
            continue;
        }
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.0}</td><td>{:.0}% of a core</td><td>{rss:.0}</td></tr>",
            dot(&s.name),
            per_1000(s, false),
            per_1000(s, true),
            s.summary.requests_per_cpu_second.median,
            gen_share * 100.0
        );
    }
    out.push_str("</tbody></table>");
    let external: Vec<String> =
        scenario.stacks.iter().filter(|s| s.external).map(|s| escape(&s.name)).collect();
    if !external.is_empty() {
        let _ = write!(
            out,
            "<p class=\"sub\">{} ran elsewhere (no processes of the runner's): {} processes' CPU and memory are not this machine's to read. Latency, throughput and errors are measured as for any stack; the brokers' columns count only brokers named in the configuration and running here.</p>",
            external.join(", "),
            if external.len() == 1 { "its" } else { "their" }
        );
    }
}

/// Resident memory of each stack's processes over the run.
fn memory(out: &mut String, scenario: &ScenarioResult) {
    let memory: Vec<Series> = scenario
        .stacks
        .iter()
        .filter_map(|s| {
            let m = analysis::representative(s)?;
            let usage = m.resources.iter().find(|u| u.name == "stack")?;
            Some(Series {
                label: s.name.clone(),
                points: usage.samples.iter().map(|p| (p.t_s, p.rss_mib)).collect(),
            })
        })
        .collect();
    let _ = write!(
        out,
        "<figure>{}</figure>",
        charts::lines("Memory of each stack's processes over the run", "time, s", "RSS, MiB", &memory, &[])
    );
}

/// Validation's share of each endpoint's time, from the services' own stats.
fn validation(out: &mut String, scenario: &ScenarioResult) {
    let mut rows = String::new();
    let mut bars = Vec::new();
    for s in &scenario.stacks {
        if let Some(m) = analysis::representative(s) {
            for v in &m.validation {
                let _ = write!(
                    rows,
                    "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}%</td></tr>",
                    dot(&s.name),
                    escape(&v.endpoint),
                    v.requests,
                    v.validation_us,
                    v.processing_us,
                    v.share * 100.0
                );
                bars.push(Bar {
                    label: format!("{} {}", s.name, v.endpoint.split('.').nth(1).unwrap_or_default()),
                    colour: s.name.clone(),
                    value: v.validation_us,
                    range: None,
                });
            }
        }
    }
    if rows.is_empty() {
        out.push_str(
            "<p class=\"missing\">No validation figures: the stacks of this scenario do not report them.</p>",
        );
    } else {
        let _ = write!(
            out,
            "<figure>{}</figure>",
            charts::bars(
                "Validation time per request, per endpoint (from the services' stats)",
                "µs per request",
                &bars
            )
        );
        let _ = write!(
            out,
            "<table><thead><tr><th class=\"l\">stack</th><th class=\"l\">endpoint</th><th>requests</th><th>validation µs</th><th>in service µs</th><th>share</th></tr></thead><tbody>{rows}</tbody></table>"
        );
    }
}

fn baseline_section(out: &mut String, c: &Context<'_>) {
    out.push_str("<h2 id=\"baseline-comparison\">Against the baseline</h2>");
    let Some((dir, base)) = c.baseline else {
        out.push_str("<p class=\"missing\">No baseline: this is the first run on disk, or none was given (<code>--baseline RUN_DIR</code>).</p>");
        return;
    };
    let _ = write!(
        out,
        "<p>Baseline: <code>{}</code>, run of {} at commit <code>{}</code>. A figure is a regression when it is worse by more than the tolerance ({:.0}%) and more than the noise band (the larger spread of either run's repetitions).</p>",
        escape(&dir.display().to_string()),
        escape(&base.started),
        escape(base.environment.git_commit.get(..10).unwrap_or_default()),
        c.tolerance * 100.0
    );
    if c.deltas.is_empty() {
        out.push_str("<p class=\"missing\">The two runs share no scenario and stack.</p>");
        return;
    }
    out.push_str("<table><thead><tr><th class=\"l\">scenario</th><th class=\"l\">stack</th><th class=\"l\">figure</th><th>baseline</th><th>this run</th><th>change</th><th>noise band</th><th class=\"l\">verdict</th></tr></thead><tbody>");
    for d in c.deltas {
        let verdict = if d.regression {
            "<span class=\"bad\">regression</span>"
        } else if d.change.abs() <= d.noise {
            "within noise"
        } else {
            "changed"
        };
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:.2}</td><td>{:.2}</td><td>{:+.1}%</td><td>±{:.1}%</td><td class=\"l\">{verdict}</td></tr>",
            escape(&d.scenario),
            dot(&d.stack),
            escape(&d.figure),
            d.before,
            d.after,
            d.change * 100.0,
            d.noise * 100.0
        );
    }
    out.push_str("</tbody></table>");
}

fn criterion_section(out: &mut String, c: &Context<'_>) {
    if c.criterion.is_empty() {
        return;
    }
    out.push_str("<h2 id=\"micro\">Micro-benchmarks: validation and the request path</h2><p>The latest criterion estimates on this machine (<code>cargo bench -p micro-benchmarks</code>), mean time per operation: what decoding and validating each contract costs by size and by number of violations, JSON against MessagePack, natsrpc's in-process path against the bare handler, the envelope.</p><table><thead><tr><th class=\"l\">benchmark</th><th>mean, µs</th></tr></thead><tbody>");
    for (id, ns) in c.criterion {
        let _ = write!(out, "<tr><td class=\"l\">{}</td><td>{:.2}</td></tr>", escape(id), ns / 1000.0);
    }
    out.push_str("</tbody></table>");
}

fn honesty(out: &mut String, r: &RunResults) {
    out.push_str("<h2 id=\"method\">How this was measured</h2>");
    let e = &r.environment;
    let _ = write!(
        out,
        "<table><tbody><tr><td class=\"l\">CPU</td><td class=\"l\">{} ({} cores)</td></tr><tr><td class=\"l\">memory</td><td class=\"l\">{:.1} GiB</td></tr><tr><td class=\"l\">kernel</td><td class=\"l\">{}</td></tr><tr><td class=\"l\">brokers</td><td class=\"l\">{} · {} · RabbitMQ {}</td></tr><tr><td class=\"l\">toolchain</td><td class=\"l\">{}</td></tr><tr><td class=\"l\">commit</td><td class=\"l\"><code>{}</code>{}</td></tr><tr><td class=\"l\">run</td><td class=\"l\">{} to {}</td></tr><tr><td class=\"l\">settings</td><td class=\"l\">{} repetition(s), warm-up {:?}, seed {}, request timeout {:?}, stacks in {} order</td></tr></tbody></table>",
        escape(&e.cpu_model),
        e.cores,
        e.memory_gib,
        escape(&e.kernel),
        escape(&e.nats_server),
        escape(&e.redis_server),
        escape(&e.rabbitmq_server),
        escape(&e.rustc),
        escape(&e.git_commit),
        if e.git_dirty { " (uncommitted changes)" } else { "" },
        escape(&r.started),
        escape(&r.finished),
        r.settings.repetitions,
        r.settings.warmup,
        r.settings.seed,
        r.settings.request_timeout,
        if r.settings.shuffle_stacks { "a shuffled" } else { "a fixed" }
    );
    let mut placed: Vec<String> = r
        .settings
        .generator_cpus
        .iter()
        .map(|cpus| format!("the load generator on CPUs {}", escape(cpus)))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for stack in r.scenarios.iter().flat_map(|s| &s.stacks) {
        for (process, cpus) in &stack.cpus {
            if seen.insert((stack.name.clone(), process.clone())) {
                placed.push(format!("{}/{} on CPUs {}", escape(&stack.name), escape(process), escape(cpus)));
            }
        }
    }
    if placed.is_empty() {
        out.push_str("<p>CPU placement: none. The load generator, the brokers and the stacks share this machine's cores; compare stacks within one run, as ratios, rather than figures across machines.</p>");
    } else {
        let _ = write!(
            out,
            "<p>CPU placement (<code>generator_cpus</code>, <code>cpus</code>): {}; everything else, the brokers included, on any core.</p>",
            placed.join(", ")
        );
    }
    let ceilings = analysis::generator_ceilings(r);
    if let Some((scenario, _, _)) = ceilings.first() {
        let each: Vec<String> = ceilings
            .iter()
            .map(|(_, stack, rps)| format!("{rps:.0} answers/s from {}", dot(stack)))
            .collect();
        let _ = write!(
            out,
            "<h3>The load generator's own ceiling</h3><p>In <b>{}</b> the generator got {} (responders that only answer): no stack on that transport can be measured faster on this machine. <code>bench selfcheck</code> sets the generator against <code>wrk</code> and bare async-nats requests on the same echoes.</p>",
            escape(scenario),
            each.join(" and ")
        );
    }
    out.push_str("<h3>Open-loop bookkeeping</h3><p>An open loop's response times run from each request's planned send; the dispatch lag is how late the generator itself sent it, part of every such figure.</p><table><thead><tr><th class=\"l\">scenario</th><th class=\"l\">stack</th><th>rep</th><th>target req/s</th><th>achieved</th><th>sent</th><th>dropped</th><th>dispatch lag p50, ms</th><th>p99</th></tr></thead><tbody>");
    let mut any = false;
    for s in &r.scenarios {
        for stack in &s.stacks {
            for m in stack.repetitions.iter().filter(|m| m.target_rps.is_some()) {
                any = true;
                let _ = write!(
                    out,
                    "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&s.name),
                    dot(&stack.name),
                    m.repetition,
                    m.target_rps.unwrap_or(0.0),
                    m.achieved_rps,
                    m.sent,
                    m.dropped,
                    ms(m.dispatch_lag_us.p50 as f64),
                    ms(m.dispatch_lag_us.p99 as f64)
                );
            }
        }
    }
    if !any {
        out.push_str("<tr><td class=\"l missing\" colspan=\"9\">no open-loop scenario in this run (closed-loop latency is service time)</td></tr>");
    }
    out.push_str("</tbody></table><h3>Warnings</h3>");
    let mut close: Vec<String> = Vec::new();
    for scenario in &r.scenarios {
        for (a, b) in analysis::not_told_apart(scenario) {
            close.push(format!(
                "{}: {a} and {b} are not told apart by this run (their throughput ranges over repetitions overlap, or one repetition only); more repetitions would settle their order",
                scenario.name
            ));
        }
    }
    if r.warnings.is_empty() && close.is_empty() {
        out.push_str("<p class=\"ok\">None.</p>");
    } else {
        out.push_str("<ul>");
        for w in r.warnings.iter().chain(&close) {
            let _ = write!(out, "<li class=\"warn\">{}</li>", escape(w));
        }
        out.push_str("</ul>");
    }
}
