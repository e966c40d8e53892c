//! A run's verdict for CI systems: every limit checked, and each stack's headline figures, as
//! JSON, CSV or JUnit XML (`bench --format`; `junit.xml` is also written beside `results.json`).
//!
//! In JUnit, each scenario is a test suite and each limit checked on a stack a test case
//! (`classname` the scenario and the stack), failed when it was missed; a scenario with no limit
//! still has one case per stack that it measured, so that a CI system shows what ran.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{ExpectationCheck, RunResults};

/// What `--format json` prints.
#[derive(Debug, Serialize)]
struct Verdict<'a> {
    /// Whether every limit held.
    passed: bool,
    started: &'a str,
    scenarios: Vec<ScenarioLine<'a>>,
    expectations: &'a [ExpectationCheck],
    warnings: &'a [String],
}

#[derive(Debug, Serialize)]
struct ScenarioLine<'a> {
    name: &'a str,
    stacks: Vec<StackLine<'a>>,
}

/// One stack's medians over its repetitions.
#[derive(Debug, Serialize)]
struct StackLine<'a> {
    name: &'a str,
    repetitions: u32,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    unexpected_rate: f64,
}

fn lines(results: &RunResults) -> Vec<ScenarioLine<'_>> {
    results
        .scenarios
        .iter()
        .map(|scenario| ScenarioLine {
            name: &scenario.name,
            stacks: scenario
                .stacks
                .iter()
                .map(|stack| StackLine {
                    name: &stack.name,
                    repetitions: stack.summary.repetitions,
                    rps: stack.summary.rps.median,
                    p50_ms: stack.summary.p50_us.median / 1000.0,
                    p99_ms: stack.summary.p99_us.median / 1000.0,
                    unexpected_rate: stack.summary.unexpected_rate.median,
                })
                .collect(),
        })
        .collect()
}

/// Whether every limit held.
pub fn passed(results: &RunResults) -> bool {
    results.expectations.iter().all(|check| check.held)
}

/// The verdict as one JSON document.
pub fn json(results: &RunResults) -> String {
    let verdict = Verdict {
        passed: passed(results),
        started: &results.started,
        scenarios: lines(results),
        expectations: &results.expectations,
        warnings: &results.warnings,
    };
    // Plain data: it serializes.
    serde_json::to_string_pretty(&verdict).unwrap_or_default() + "\n"
}

/// Each stack's medians, a row per scenario and stack.
pub fn csv(results: &RunResults) -> String {
    let mut out =
        String::from("scenario,stack,repetitions,rps,p50_ms,p99_ms,unexpected_rate,limits_missed\n");
    for scenario in lines(results) {
        for stack in scenario.stacks {
            let missed = results
                .expectations
                .iter()
                .filter(|c| !c.held && c.scenario == scenario.name && c.stack == stack.name)
                .count();
            let _ = writeln!(
                out,
                "{},{},{},{:.1},{:.3},{:.3},{:.6},{missed}",
                field(scenario.name),
                field(stack.name),
                stack.repetitions,
                stack.rps,
                stack.p50_ms,
                stack.p99_ms,
                stack.unexpected_rate
            );
        }
    }
    out
}

/// A CSV field, quoted when it must be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The verdict as JUnit XML.
pub fn junit(results: &RunResults) -> String {
    let failures = results.expectations.iter().filter(|c| !c.held).count();
    let mut suites = String::new();
    let mut total = 0;
    for scenario in &results.scenarios {
        let mut cases = String::new();
        let (mut tests, mut failed) = (0, 0);
        for stack in &scenario.stacks {
            let checks: Vec<&ExpectationCheck> = results
                .expectations
                .iter()
                .filter(|c| c.scenario == scenario.name && c.stack == stack.name)
                .collect();
            let class = xml(&format!("{}.{}", scenario.name, stack.name));
            if checks.is_empty() {
                tests += 1;
                let _ = writeln!(cases, "    <testcase classname=\"{class}\" name=\"measured\"/>");
            }
            for check in checks {
                tests += 1;
                let name = xml(&check.metric);
                if check.held {
                    let _ = writeln!(cases, "    <testcase classname=\"{class}\" name=\"{name}\"/>");
                } else {
                    failed += 1;
                    let _ = writeln!(
                        cases,
                        "    <testcase classname=\"{class}\" name=\"{name}\">\n      <failure message=\"{}\" type=\"limit\"/>\n    </testcase>",
                        xml(&check.describe())
                    );
                }
            }
        }
        total += tests;
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failed}\">\n{cases}  </testsuite>\n",
            xml(&scenario.name)
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"bench\" tests=\"{total}\" failures=\"{failures}\">\n{suites}</testsuites>\n"
    )
}

/// `text` for an XML attribute: markup escaped, and characters XML 1.0 cannot hold dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if u32::from(c) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(stack: &str, metric: &str, held: bool) -> ExpectationCheck {
        ExpectationCheck {
            scenario: "base<line>".into(),
            stack: stack.into(),
            metric: metric.into(),
            limit: 1.0,
            value: if held { 0.5 } else { 2.0 },
            held,
        }
    }

    #[test]
    fn xml_and_csv_fields_are_escaped() {
        assert_eq!(xml("a<b & \"c\"\u{1}\n"), "a&lt;b &amp; &quot;c&quot; ");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("plain"), "plain");
    }

    #[test]
    fn junit_has_a_case_per_limit_and_a_failure_per_miss() {
        let mut results: RunResults =
            serde_json::from_str(include_str!("../tests/fixtures/runs/20261125T195550Z/results.json"))
                .unwrap();
        let stack = results.scenarios[0].stacks[0].name.clone();
        results.scenarios[0].name = "base<line>".into();
        results.expectations = vec![check(&stack, "p50_ms", true), check(&stack, "p99_ms of a&b", false)];
        let xml = junit(&results);
        assert!(xml.starts_with("<?xml"), "{xml}");
        // Two limits on its first stack, and its second stack measured.
        assert!(xml.contains("<testsuite name=\"base&lt;line&gt;\" tests=\"3\" failures=\"1\">"), "{xml}");
        assert!(xml.contains("name=\"p99_ms of a&amp;b\">\n      <failure message=\""), "{xml}");
        assert!(xml.contains("failures=\"1\">"), "{xml}");
        // The other scenarios had no limits: a case each of their stacks, for what ran.
        assert!(xml.contains("name=\"measured\"/>"), "{xml}");
        assert!(!passed(&results));
        let verdict: serde_json::Value = serde_json::from_str(&json(&results)).unwrap();
        assert_eq!(verdict["passed"], false);
        assert_eq!(verdict["expectations"][1]["metric"], "p99_ms of a&b");
        let csv = csv(&results);
        assert!(csv.starts_with("scenario,stack,repetitions,rps,"), "{csv}");
        assert!(csv.lines().nth(1).unwrap().ends_with(",1"), "one missed on the first row: {csv}");
    }
}
