//! The views only some scenarios have, below their throughput and latency: each flow's journey
//! and where its time goes step by step, latency against the fan-out K (`get_order_overview`), the stock books of a contention run, the lag and the
//! exactly-once count of convergence, a soak's drift and memory trends with their verdicts, and
//! each stack's recovery from a scenario's outages, the orders of record, and throughput and p99
//! against the instance count of a scale-out.
//! Each view shows when its scenario's results carry its figures, whatever the scenario's name.

use std::fmt::Write;

use crate::analysis;
use crate::charts::dot;
use crate::charts::{self, Series};
use crate::text::{escape, ms};
use bench_results::MemoryVerdict;
use bench_results::{Measurement, ScenarioResult};

fn mark(held: bool, yes: &str, no: &str) -> String {
    if held { format!("<span class=\"ok\">{yes}</span>") } else { format!("<span class=\"bad\">{no}</span>") }
}

/// Every repetition of every stack, with its stack's name.
fn measurements(scenario: &ScenarioResult) -> impl Iterator<Item = (&str, &Measurement)> {
    scenario.stacks.iter().flat_map(|s| s.repetitions.iter().map(move |m| (s.name.as_str(), m)))
}

/// All the views `scenario` has, on a machine of `cores` cores.
pub fn views(out: &mut String, scenario: &ScenarioResult, cores: usize) {
    scale_out(out, scenario, cores);
    journeys(out, scenario);
    fan_out(out, scenario);
    contention(out, scenario);
    convergence(out, scenario);
    soak(out, scenario);
    outages(out, scenario);
    archive(out, scenario);
}

/// (instances, median throughput, median p99 µs) of one count of a scale-out.
type CountPoint = (u32, f64, f64);

/// Each scaled stack's figures per instance count, in the order the scenario ran them.
fn scale_curves(scenario: &ScenarioResult) -> Vec<(String, String, bool, Vec<CountPoint>)> {
    let mut curves: Vec<(String, String, bool, Vec<CountPoint>)> = Vec::new();
    for stack in &scenario.stacks {
        let Some(scaled) = &stack.scaled else { continue };
        let point = (scaled.instances, stack.summary.rps.median, stack.summary.p99_us.median);
        match curves.iter_mut().find(|(of, ..)| *of == scaled.of) {
            Some((.., points)) => points.push(point),
            None => curves.push((scaled.of.clone(), scaled.process.clone(), scaled.balanced, vec![point])),
        }
    }
    for (.., points) in &mut curves {
        points.sort_by_key(|p| p.0);
    }
    curves
}

/// Throughput and p99 against the instance count of each stack's scaled process, read against
/// the machine's cores.
fn scale_out(out: &mut String, scenario: &ScenarioResult, cores: usize) {
    let curves = scale_curves(scenario);
    if curves.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<h3>Scaling out</h3><p class=\"sub\">The same load on 1, 2, 4... instances of each stack's service process. <strong>This machine has {cores} cores</strong>, shared by every instance, the brokers and the load generator: past {cores} instances there is no core left to add, and a flat or falling curve says so rather than that the stack cannot scale. A rising curve shows what a bigger machine or more machines would add.</p>"
    );
    let series = |pick: fn(&CountPoint) -> f64| -> Vec<Series> {
        curves
            .iter()
            .map(|(stack, _, _, points)| Series {
                label: stack.clone(),
                points: points.iter().map(|p| (f64::from(p.0), pick(p))).collect(),
            })
            .collect()
    };
    let _ = write!(
        out,
        "<figure>{}</figure><figure>{}</figure>",
        charts::lines("Throughput against instances", "instances", "requests/s", &series(|p| p.1), &[]),
        charts::lines("p99 against instances", "instances", "p99, ms", &series(|p| p.2 / 1000.0), &[])
    );
    let mut counts: Vec<u32> = curves.iter().flat_map(|c| c.3.iter().map(|p| p.0)).collect();
    counts.sort_unstable();
    counts.dedup();
    out.push_str("<table><thead><tr><th class=\"l\">stack</th><th class=\"l\">scaled</th>");
    for n in &counts {
        let _ = write!(out, "<th>×{n} req/s</th><th>p99</th>");
    }
    out.push_str("<th>most / fewest</th></tr></thead><tbody>");
    for (stack, process, balanced, points) in &curves {
        let how = if *balanced { format!("{} behind HAProxy", escape(process)) } else { escape(process) };
        let _ = write!(out, "<tr><td class=\"l\">{}</td><td class=\"l\">{how}</td>", dot(stack));
        for n in &counts {
            match points.iter().find(|p| p.0 == *n) {
                Some((_, rps, p99)) => {
                    let _ = write!(out, "<td>{rps:.0}</td><td>{}</td>", ms(*p99));
                }
                // A count that failed on this stack.
                None => out.push_str("<td class=\"missing\">–</td><td class=\"missing\">–</td>"),
            }
        }
        let gain = match (points.first(), points.iter().map(|p| p.1).reduce(f64::max)) {
            (Some(one), Some(most)) if one.1 > 0.0 => format!("×{:.2}", most / one.1),
            _ => "–".into(),
        };
        let _ = write!(out, "<td>{gain}</td></tr>");
    }
    out.push_str("</tbody></table><p class=\"sub\">Medians over the repetitions; p99 in milliseconds. The last column is the best count's throughput over the fewest instances'.</p>");
}

/// Step colours: a journey's steps, bottom first (blues to oranges, as a sequence reads).
const STEP_COLOURS: [plotters::style::RGBColor; 6] = [
    plotters::style::RGBColor(31, 119, 180),
    plotters::style::RGBColor(174, 199, 232),
    plotters::style::RGBColor(44, 160, 44),
    plotters::style::RGBColor(152, 223, 138),
    plotters::style::RGBColor(255, 127, 14),
    plotters::style::RGBColor(255, 187, 120),
];

/// Each flow: journeys completed a second, the journey's latency, what ended journeys early, and
/// each step's share of the time, per stack (from the repetition with the median p99).
fn journeys(out: &mut String, scenario: &ScenarioResult) {
    for (f, flow) in scenario.flows.iter().enumerate() {
        let prefix = format!("{}/", flow.name);
        let stacks: Vec<(&str, &Measurement)> = scenario
            .stacks
            .iter()
            .filter_map(|s| Some((s.name.as_str(), analysis::representative(s)?)))
            .filter(|(_, m)| m.flows.get(f).is_some_and(|j| j.name == flow.name))
            .collect();
        if stacks.is_empty() {
            continue;
        }
        let steps = |m: &'_ Measurement| -> Vec<bench_results::EndpointResult> {
            m.endpoints.iter().filter(|e| e.name.starts_with(&prefix)).cloned().collect()
        };
        let step_names: Vec<String> = steps(stacks[0].1).iter().map(|e| e.name.clone()).collect();
        let _ = write!(
            out,
            "<h3>Journey: {}</h3><p class=\"sub\">{} steps in turn, each answer feeding the next. A journey counts from its planned start to its last answer, think times included, and ends at the first step that fails; each step counts from when it was due (the step before answered, its think time over). Bars: each step's median.</p>",
            escape(&flow.name),
            step_names.len()
        );
        let names: Vec<String> = stacks.iter().map(|(s, _)| (*s).to_string()).collect();
        let parts: Vec<(String, plotters::style::RGBColor, Vec<f64>)> = step_names
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let p50s = stacks
                    .iter()
                    .map(|(_, m)| {
                        steps(m)
                            .iter()
                            .find(|e| &e.name == step)
                            .map_or(0.0, |e| e.latency_us.p50 as f64 / 1000.0)
                    })
                    .collect();
                (step.clone(), STEP_COLOURS[i % STEP_COLOURS.len()], p50s)
            })
            .collect();
        let title = format!("Where the time of a {} journey goes: each step's median", flow.name);
        let _ = write!(out, "<figure>{}</figure>", charts::stacked(&title, "ms", &names, &parts));
        out.push_str("<table><thead><tr><th class=\"l\">stack</th><th>journeys/s</th><th>p50</th><th>p99</th><th>ended early</th>");
        for step in &step_names {
            let _ = write!(out, "<th>{} p50</th><th>p99</th>", escape(&short_step(step, &prefix)));
        }
        out.push_str("<th class=\"l\">why ended early</th></tr></thead><tbody>");
        for (stack, m) in &stacks {
            let Some(journey) = m.flows.get(f) else { continue };
            let failed = journey.answered - journey.ok;
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td>",
                dot(stack),
                journey.ok as f64 / m.duration_s.max(1e-9),
                ms(journey.latency_us.p50 as f64),
                ms(journey.latency_us.p99 as f64),
                mark(failed == 0, "0", &failed.to_string())
            );
            let mine = steps(m);
            for step in &step_names {
                match mine.iter().find(|e| &e.name == step) {
                    Some(e) => {
                        let _ = write!(
                            out,
                            "<td>{}</td><td>{}</td>",
                            ms(e.latency_us.p50 as f64),
                            ms(e.latency_us.p99 as f64)
                        );
                    }
                    None => out.push_str("<td class=\"missing\">–</td><td class=\"missing\">–</td>"),
                }
            }
            let why: Vec<String> = journey
                .unexpected_errors
                .iter()
                .chain(&journey.expected_errors)
                .map(|(kind, n)| format!("{} {n}", escape(&kind.to_string())))
                .collect();
            let _ = write!(out, "<td class=\"l\">{}</td></tr>", why.join(", "));
        }
        out.push_str(
            "</tbody></table><p class=\"sub\">Milliseconds, from the repetition with the median p99.</p>",
        );
    }
}

/// A step's label in a table's heading: `order_lifecycle/2 ecommerce.get_order` as `2 get_order`.
fn short_step(label: &str, prefix: &str) -> String {
    let step = label.strip_prefix(prefix).unwrap_or(label);
    match step.split_once(' ') {
        Some((n, endpoint)) => format!("{n} {}", endpoint.split_once('.').map_or(endpoint, |(_, e)| e)),
        None => step.to_string(),
    }
}

/// (K, p50 µs, p99 µs) of one fan-out.
type KPoint = (f64, u64, u64);

/// The K of an endpoint label `ecommerce.get_order_overview/k5`.
fn k_of(label: &str) -> Option<f64> {
    label.rsplit_once("/k")?.1.parse().ok()
}

fn fan_out(out: &mut String, scenario: &ScenarioResult) {
    let curves: Vec<(String, Vec<KPoint>)> = scenario
        .stacks
        .iter()
        .filter_map(|s| {
            let m = analysis::representative(s)?;
            let mut points: Vec<KPoint> = m
                .endpoints
                .iter()
                .filter_map(|e| Some((k_of(&e.name)?, e.latency_us.p50, e.latency_us.p99)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (!points.is_empty()).then(|| (s.name.clone(), points))
        })
        .collect();
    if curves.is_empty() {
        return;
    }
    let series = |pick: fn(&KPoint) -> u64| -> Vec<Series> {
        curves
            .iter()
            .map(|(stack, points)| Series {
                label: stack.clone(),
                points: points.iter().map(|p| (p.0, pick(p) as f64 / 1000.0)).collect(),
            })
            .collect()
    };
    out.push_str("<h3>Latency against fan-out</h3><p class=\"sub\">One request in, K sub-requests out over the stack's own transport, joined under one deadline. The slope is what each extra internal call costs; where it crosses another stack's line, fan-out changes the ranking.</p>");
    let _ = write!(
        out,
        "<figure>{}</figure>",
        charts::lines(
            "Median latency against K",
            "K (sub-requests per request)",
            "p50, ms",
            &series(|p| p.1),
            &[]
        )
    );
    let ks: Vec<f64> = curves[0].1.iter().map(|p| p.0).collect();
    out.push_str("<table><thead><tr><th class=\"l\">stack</th>");
    for k in &ks {
        let _ = write!(out, "<th>K={k} p50</th><th>p99</th>");
    }
    out.push_str("<th>per extra call, µs</th></tr></thead><tbody>");
    for (stack, points) in &curves {
        let _ = write!(out, "<tr><td class=\"l\">{}</td>", dot(stack));
        for (_, p50, p99) in points {
            let _ = write!(out, "<td>{}</td><td>{}</td>", ms(*p50 as f64), ms(*p99 as f64));
        }
        let per_call = match (points.first(), points.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => format!("{:.0}", (b.1 as f64 - a.1 as f64) / (b.0 - a.0)),
            _ => "–".into(),
        };
        let _ = write!(out, "<td>{per_call}</td></tr>");
    }
    out.push_str("</tbody></table><p class=\"sub\">Milliseconds, from the repetition with the median p99; the last column is the p50's slope from the smallest K to the largest.</p>");
}

fn contention(out: &mut String, scenario: &ScenarioResult) {
    if !measurements(scenario).any(|(_, m)| m.contention.is_some()) {
        return;
    }
    out.push_str("<h3>The stock books</h3><p class=\"sub\">Every unit that reservations were told they took and restocks added, against the stock each hot item has left at the end (warm-up included). Initial + added must equal taken + left on every item; unanswered requests widen what is allowed by their units.</p><table><thead><tr><th class=\"l\">stack</th><th>rep</th><th>reservations</th><th>refused (no stock)</th><th>initial</th><th>added</th><th>taken</th><th>left</th><th>unanswered units</th><th>oversold</th><th>vanished</th><th class=\"l\">books</th></tr></thead><tbody>");
    for (stack, m) in measurements(scenario) {
        let Some(c) = &m.contention else { continue };
        let sum = |pick: fn(&bench_results::ItemBalance) -> u64| c.items.iter().map(pick).sum::<u64>();
        let left: Option<u64> = c.items.iter().map(|i| i.remaining).sum();
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            dot(stack),
            m.repetition,
            charts::format_number(c.reservations as f64),
            c.conflict_rate * 100.0,
            sum(|i| i.initial),
            sum(|i| i.added),
            sum(|i| i.taken),
            left.map_or_else(|| "?".into(), |l| l.to_string()),
            sum(|i| i.added_unknown + i.taken_unknown),
            c.oversold_units,
            c.vanished_units,
            mark(c.balanced, "balance", "DO NOT BALANCE"),
        );
    }
    out.push_str("</tbody></table>");
}

fn convergence(out: &mut String, scenario: &ScenarioResult) {
    if !measurements(scenario).any(|(_, m)| m.convergence.is_some()) {
        return;
    }
    let bars: Vec<charts::Bar> = scenario
        .stacks
        .iter()
        .filter_map(|s| {
            let lags: Vec<f64> = s
                .repetitions
                .iter()
                .filter_map(|m| Some(m.convergence.as_ref()?.lag_us.p99 as f64 / 1000.0))
                .collect();
            let spread = bench_results::Spread::of(lags.iter().copied());
            (!lags.is_empty()).then(|| charts::Bar {
                label: s.name.clone(),
                colour: s.name.clone(),
                value: spread.median,
                range: Some((spread.min, spread.max)),
            })
        })
        .collect();
    out.push_str("<h3>From acknowledgement to analytics</h3><p class=\"sub\">Each order has a customer of its own; a probe asks analytics for that customer's events until the order shows. Lag: from the order's acknowledgement to the middle of the first question that saw it; <em>there at once</em>: orders the first question already found, in analytics by the time the buyer heard back. After the load every order is counted once more: it must be there exactly once.</p>");
    let _ = write!(
        out,
        "<figure>{}</figure>",
        charts::bars("p99 lag until analytics counts an order (median of repetitions)", "ms", &bars)
    );
    out.push_str("<table><thead><tr><th class=\"l\">stack</th><th>rep</th><th>orders</th><th>lag p50, ms</th><th>p90</th><th>p99</th><th>max</th><th>there at once</th><th>lost</th><th>counted twice</th><th>unacknowledged</th><th class=\"l\">every order once</th></tr></thead><tbody>");
    let mut resolution = None;
    for (stack, m) in measurements(scenario) {
        let Some(c) = &m.convergence else { continue };
        resolution = Some((c.poll_ms, c.settle_s));
        let l = &c.lag_us;
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            dot(stack),
            m.repetition,
            c.orders,
            ms(l.p50 as f64),
            ms(l.p90 as f64),
            ms(l.p99 as f64),
            ms(l.max as f64),
            format_args!("{:.0}%", c.seen_at_once as f64 * 100.0 / c.orders.max(1) as f64),
            c.lost + c.not_recounted,
            c.counted_twice,
            c.unacknowledged,
            mark(c.exactly_once(), "yes", "NO"),
        );
    }
    out.push_str("</tbody></table>");
    if let Some((poll, settle)) = resolution {
        let _ = write!(
            out,
            "<p class=\"sub\">Probes ask every {poll:.0} ms at first (the lag's resolution), then every tenth of the time an order has waited (up to a second); an order not seen within {settle:.0} s counts as lost.</p>"
        );
    }
}

fn soak(out: &mut String, scenario: &ScenarioResult) {
    if !measurements(scenario).any(|(_, m)| m.soak.is_some()) {
        return;
    }
    out.push_str("<h3>Over the soak</h3><p class=\"sub\">Each stack at the same share of its own saturation rate. Drift: the median of the per-second percentiles in the first tenth of the soak against the last tenth. Memory: the slope of a least-squares line through each process's resident memory; growing means it still grows in the second half, by more than 1 MiB or 1% a minute (the chart of the processes' memory over the run is below).</p>");
    out.push_str("<table><thead><tr><th class=\"l\">stack</th><th>rep</th><th>saturation, req/s</th><th>offered</th><th>p50 first → last, ms</th><th>p99 first → last, ms</th><th class=\"l\">memory (MiB per minute)</th></tr></thead><tbody>");
    for (stack, m) in measurements(scenario) {
        let Some(soak) = &m.soak else { continue };
        let d = &soak.drift;
        let trends: Vec<String> = soak
            .memory
            .iter()
            .map(|t| {
                let verdict = match (t.verdict, t.conclusive) {
                    (MemoryVerdict::Growing, true) => "<span class=\"bad\">growing</span>",
                    (MemoryVerdict::Growing, false) => {
                        "<span class=\"warn\">growing</span> (too short to be sure)"
                    }
                    (MemoryVerdict::Steady, true) => "<span class=\"ok\">steady</span>",
                    (MemoryVerdict::Steady, false) => "steady (too short to be sure)",
                };
                format!(
                    "{} {:.0}→{:.0} MiB, {:+.2}/min: {verdict}",
                    escape(&t.name),
                    t.start_mib,
                    t.end_mib,
                    t.slope_mib_per_min
                )
            })
            .collect();
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{} ({:.0}%)</td><td>{} → {} (×{:.2})</td><td>{} → {} (×{:.2})</td><td class=\"l\">{}</td></tr>",
            dot(stack),
            m.repetition,
            charts::format_number(soak.saturation_rps),
            charts::format_number(soak.offered_rps),
            soak.fraction * 100.0,
            ms(d.first_p50_us),
            ms(d.last_p50_us),
            d.p50_ratio(),
            ms(d.first_p99_us),
            ms(d.last_p99_us),
            d.p99_ratio(),
            trends.join("<br>"),
        );
    }
    out.push_str("</tbody></table>");
}

fn archive(out: &mut String, scenario: &ScenarioResult) {
    if !measurements(scenario).any(|(_, m)| m.archive.is_some()) {
        return;
    }
    out.push_str("<h3>The orders of record</h3><p class=\"sub\">Each stack archives every order placed into a PostgreSQL of its own, from its own event path (a JetStream durable consumer, a Redis stream consumer group, a durable RabbitMQ queue). <em>Waiting</em>: orders acknowledged to their buyer and not yet archived, which wait in the broker meanwhile (shaded: the stack's outages). <em>Drained</em>: from the component being back until every order acknowledged by then was archived. <em>Missing</em>: acknowledged orders the archive never got.</p>");
    let mut series = Vec::new();
    let mut spans = Vec::new();
    for s in &scenario.stacks {
        let Some(m) = analysis::representative(s) else { continue };
        let Some(archive) = &m.archive else { continue };
        series.push(Series {
            label: s.name.clone(),
            points: archive.backlog.iter().map(|(t, n)| (*t, *n as f64)).collect(),
        });
        if let Some(faults) = &m.faults {
            spans.extend(faults.outages.iter().map(|o| charts::Span {
                stack: s.name.clone(),
                from: o.began_s,
                to: o.back_s,
            }));
        }
    }
    let _ = write!(
        out,
        "<figure>{}</figure>",
        charts::lines_over_spans(
            "Orders waiting for the archive",
            "s into the load",
            "orders",
            &series,
            &spans
        )
    );
    out.push_str("<table><thead><tr><th class=\"l\">stack</th><th>rep</th><th>acknowledged</th><th>archived</th><th>missing</th><th>most waiting</th><th class=\"l\">drained after each outage</th><th>caught up after the load, ms</th></tr></thead><tbody>");
    for (stack, m) in measurements(scenario) {
        let Some(archive) = &m.archive else { continue };
        let drains: Vec<String> = m
            .faults
            .iter()
            .flat_map(|f| &f.outages)
            .map(|o| {
                let drained =
                    o.drain_ms.map_or_else(|| "NOT drained".to_string(), |ms| format!("{ms:.0} ms"));
                format!("{} {}: {drained}", escape(&o.action), escape(&o.target))
            })
            .collect();
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td></tr>",
            dot(stack),
            m.repetition,
            archive.orders,
            archive.archived,
            mark(archive.missing == 0, "0", &archive.missing.to_string()),
            archive.backlog_peak,
            if drains.is_empty() { "none".to_string() } else { drains.join("<br>") },
            archive.caught_up_ms.map_or_else(|| "never".to_string(), |ms| format!("{ms:.0}")),
        );
    }
    out.push_str("</tbody></table>");
}

fn outages(out: &mut String, scenario: &ScenarioResult) {
    if !measurements(scenario).any(|(_, m)| m.faults.is_some()) {
        return;
    }
    out.push_str("<h3>Through the outages</h3><p class=\"sub\">Each stack on brokers of its own, which the runner takes down as the scenario says (shaded: from the outage to the component being back: a restarted broker accepting connections again, a stalled process let run). <em>First success</em> and <em>recovered</em> count from then: the first answer that succeeded, and the first second from it whose requests were served (a success within a second) at 90% of the rate of the five seconds before. Errors are those of the requests sent from the outage until then. <em>Lost</em>: orders acknowledged that analytics never counted; <em>twice</em>: counted more than once.</p>");
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    let mut spans = Vec::new();
    for s in &scenario.stacks {
        let Some(m) = analysis::representative(s) else { continue };
        let Some(faults) = &m.faults else { continue };
        // `n` of an interval's answers, per second: their share of its rate.
        let per_second = |i: &bench_results::IntervalResult, n: u64| {
            (i.t_s, if i.answered == 0 { 0.0 } else { i.rps * n as f64 / i.answered as f64 })
        };
        ok.push(Series {
            label: s.name.clone(),
            points: m
                .intervals
                .iter()
                .map(|i| per_second(i, i.answered.saturating_sub(i.unexpected)))
                .collect(),
        });
        errors.push(Series {
            label: s.name.clone(),
            points: m.intervals.iter().map(|i| per_second(i, i.unexpected)).collect(),
        });
        spans.extend(faults.outages.iter().map(|o| charts::Span {
            stack: s.name.clone(),
            from: o.began_s,
            to: o.back_s,
        }));
    }
    for (title, series) in
        [("Successes per second, outage shaded", &ok), ("Unexpected errors per second", &errors)]
    {
        let _ = write!(
            out,
            "<figure>{}</figure>",
            charts::lines_over_spans(title, "s into the load", "per second", series, &spans)
        );
    }
    out.push_str("<table><thead><tr><th class=\"l\">stack</th><th>rep</th><th class=\"l\">outage</th><th>at, s</th><th>down, s</th><th>back after, ms</th><th>first success, ms</th><th>recovered, ms</th><th class=\"l\">errors meanwhile</th><th>lost</th><th>twice</th><th class=\"l\">recovered by itself</th></tr></thead><tbody>");
    for (stack, m) in measurements(scenario) {
        let Some(faults) = &m.faults else { continue };
        for o in &faults.outages {
            let kinds: Vec<String> =
                o.errors.iter().map(|(kind, n)| format!("{} ×{n}", escape(&kind.to_string()))).collect();
            let optional_ms = |v: Option<f64>| v.map_or_else(|| "never".to_string(), |v| format!("{v:.0}"));
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{} {}</td><td>{:.1}</td><td>{:.1}</td><td>{:.0}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                dot(stack),
                m.repetition,
                escape(&o.action),
                escape(&o.target),
                o.began_s,
                o.restored_s - o.began_s,
                (o.back_s - o.restored_s) * 1000.0,
                optional_ms(o.first_success_ms),
                optional_ms(o.recovery_ms),
                if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") },
                mark(faults.acknowledged_lost == 0, "0", &faults.acknowledged_lost.to_string()),
                mark(faults.duplicated == 0, "0", &faults.duplicated.to_string()),
                mark(o.recovered(), "yes", "NO"),
            );
        }
    }
    out.push_str("</tbody></table>");
}

/// One plain line of what the views show for `stack` (its representative repetition), for the
/// Markdown summary; `None` when its scenario has no view.
pub fn note(stack: &bench_results::StackResult) -> Option<String> {
    let m = analysis::representative(stack)?;
    let mut parts = Vec::new();
    if let Some(c) = &m.contention {
        let books = if c.balanced {
            "the books balance".to_string()
        } else {
            format!("the books DO NOT balance ({} oversold, {} vanished)", c.oversold_units, c.vanished_units)
        };
        parts.push(format!(
            "{:.1}% of reservations refused for want of stock; {books}",
            c.conflict_rate * 100.0
        ));
    }
    if let Some(c) = &m.convergence {
        parts.push(format!(
            "lag to analytics p50 {} ms, p99 {} ms ({:.0}% already there when acknowledged); {} orders, {} counted once, {} lost, {} twice",
            ms(c.lag_us.p50 as f64),
            ms(c.lag_us.p99 as f64),
            c.seen_at_once as f64 * 100.0 / c.orders.max(1) as f64,
            c.orders,
            c.counted_once,
            c.lost + c.not_recounted,
            c.counted_twice
        ));
    }
    if let Some(soak) = &m.soak {
        let memory: Vec<String> = soak
            .memory
            .iter()
            .map(|t| {
                let verdict = if t.verdict == MemoryVerdict::Growing { "GROWING" } else { "steady" };
                let unsure = if t.conclusive { "" } else { " (too short to be sure)" };
                format!("{} {:+.2} MiB/min {verdict}{unsure}", t.name, t.slope_mib_per_min)
            })
            .collect();
        parts.push(format!(
            "soaked at {} of {} req/s; p99 x{:.2} from first to last tenth; {}",
            charts::format_number(soak.offered_rps),
            charts::format_number(soak.saturation_rps),
            soak.drift.p99_ratio(),
            memory.join(", ")
        ));
    }
    if let Some(faults) = &m.faults {
        let recovery = match faults.recovery_ms {
            Some(ms) if faults.recovered => {
                format!("recovered by itself within {ms:.0} ms of the component being back")
            }
            _ => "did NOT recover by itself".to_string(),
        };
        parts.push(format!(
            "through the outages: {recovery}; {} acknowledged and lost, {} applied twice",
            faults.acknowledged_lost, faults.duplicated
        ));
    }
    if let Some(archive) = &m.archive {
        let drains: Vec<String> = m
            .faults
            .iter()
            .flat_map(|f| &f.outages)
            .filter_map(|o| o.drain_ms.map(|ms| format!("{ms:.0} ms")))
            .collect();
        let drained = if drains.is_empty() {
            String::new()
        } else {
            format!(", drained {} after back", drains.join(", "))
        };
        parts.push(format!(
            "archive: {} of {} acknowledged orders, {} missing; at most {} waiting{drained}",
            archive.archived, archive.orders, archive.missing, archive.backlog_peak
        ));
    }
    if let Some(scaled) = &stack.scaled {
        parts.push(format!(
            "{} instance(s) of {}{}: {} req/s, p99 {} ms",
            scaled.instances,
            scaled.process,
            if scaled.balanced { " behind HAProxy" } else { "" },
            charts::format_number(stack.summary.rps.median),
            ms(stack.summary.p99_us.median)
        ));
    }
    (!parts.is_empty()).then(|| format!("{}: {}", stack.name, parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::k_of;

    #[test]
    fn the_fan_out_of_an_endpoint_label() {
        assert_eq!(k_of("ecommerce.get_order_overview/k17"), Some(17.0));
        assert_eq!(k_of("ecommerce.create_order/small"), None);
    }
}
