//! The report, from the checked-in `results.json` of two small real runs (`benchmarks/results/tests/fixtures/runs`):
//! every section and chart present; a run missing its optional parts still renders; the baseline
//! comparison flags a regression and sets the exit code; and the page, opened from disk in
//! headless Chromium, draws every chart without a single request leaving the machine.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bench_report as report;
use bench_results::RunResults;

const OLDER: &str = "20261125T195550Z";
const NEWER: &str = "20261125T195610Z";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/tests/fixtures/runs").join(name)
}

/// A change made to a fixture run before it is reported.
type Change<'a> = &'a dyn Fn(&mut RunResults);

/// A reports folder of its own holding copies of the fixture runs, each possibly changed.
fn reports(runs: &[(&str, Change<'_>)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natsrpc-report-{}", nuid::next()));
    for (name, change) in runs {
        let run = dir.join("runs").join(name);
        std::fs::create_dir_all(&run).unwrap();
        let mut results = RunResults::read(&fixture(name).join("results.json")).unwrap();
        change(&mut results);
        std::fs::write(run.join("results.json"), serde_json::to_vec(&results).unwrap()).unwrap();
    }
    dir
}

fn unchanged(_: &mut RunResults) {}

/// The SVG charts of a page, and how many of them have something plotted.
fn charts(html: &str) -> (usize, usize) {
    let svgs: Vec<&str> =
        html.split("<svg").skip(1).map(|rest| rest.split("</svg>").next().unwrap_or("")).collect();
    let drawn = svgs
        .iter()
        .filter(|svg| {
            svg.contains("<polyline")
                || svg.contains("<rect x") && svg.matches("<rect").count() > 2
                || svg.contains("<circle")
        })
        .count();
    (svgs.len(), drawn)
}

#[test]
fn the_page_has_every_section_and_every_chart_is_drawn() {
    let dir = reports(&[(OLDER, &unchanged)]);
    let made = report::report(&dir.join("runs").join(OLDER), None, 0.1).unwrap();
    for id in ["verdict", "where", "scenario-steady", "scenario-knee", "baseline-comparison", "method"] {
        assert!(made.html.contains(&format!("id=\"{id}\"")), "section {id}");
    }
    // Per scenario: throughput, latency spectrum, over time, errors, CPU, memory, validation; the
    // stepped one adds two saturation charts; and the breakdown of where the time goes.
    let (count, drawn) = charts(&made.html);
    assert_eq!(count, 7 + 7 + 2 + 1, "every chart is there");
    assert_eq!(drawn, count, "and has something plotted");
    assert!(!made.html.contains("chart not drawn"));
    assert!(made.html.contains("knee at offered req/s"));
    // Self-contained: nothing to fetch, nothing to run.
    for outside in ["<script", "<link", " src=", "@import", "url("] {
        assert!(!made.html.contains(outside), "{outside}");
    }
    assert!(made.markdown.contains("| 1 | "), "{}", made.markdown);
    assert!(made.terminal.contains("steady"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_journey_is_shown_whole_and_step_by_step() {
    // The first scenario's requests, read as the steps of one journey that ended early once.
    let journey = |r: &mut RunResults| {
        let scenario = &mut r.scenarios[0];
        let steps = scenario.mix.clone();
        scenario.flows = vec![bench_results::Flow { name: "shop".into(), weight: 1.0, steps }];
        for m in scenario.stacks.iter_mut().flat_map(|s| &mut s.repetitions) {
            for (n, step) in m.endpoints.iter_mut().enumerate() {
                step.name = format!("shop/{} {}", n + 1, step.name);
            }
            let mut whole = m.endpoints[0].clone();
            whole.name = "shop".into();
            whole.latency_us.p50 *= 3;
            whole.unexpected_errors.insert("flow:capture_missing".into(), 1);
            whole.answered += 1;
            m.flows = vec![whole];
        }
    };
    let dir = reports(&[(OLDER, &journey)]);
    let made = report::report(&dir.join("runs").join(OLDER), None, 0.1).unwrap();
    assert!(made.html.contains("<h3>Journey: shop</h3>"), "the journey's view");
    assert!(made.html.contains("Where the time of a shop journey goes"), "its chart");
    assert!(made.html.contains("flow:capture_missing 1"), "why a journey ended early");
    assert!(made.html.contains("flows: shop ("), "the scenario's line names it");
    let (count, drawn) = charts(&made.html);
    assert_eq!(drawn, count, "every chart, the journey's too, has something plotted");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_run_missing_its_optional_parts_still_renders() {
    let strip = |r: &mut RunResults| {
        r.warnings.clear();
        r.expectations.clear();
        r.environment = Default::default();
        for scenario in &mut r.scenarios {
            for stack in &mut scenario.stacks {
                for m in &mut stack.repetitions {
                    m.steps.clear();
                    m.validation.clear();
                    m.resources.clear();
                    m.intervals.clear();
                    m.endpoints.clear();
                }
            }
        }
        r.scenarios.truncate(1);
        r.scenarios[0].stacks.truncate(1);
    };
    let dir = reports(&[(OLDER, &strip)]);
    let made = report::report(&dir.join("runs").join(OLDER), None, 0.1).unwrap();
    assert!(made.html.contains("id=\"method\""));
    assert!(made.html.contains("No validation figures"));
    assert!(made.html.contains("The control stacks were not part of this run"));
    assert!(made.html.ends_with("</html>\n"));
    let _ = std::fs::remove_dir_all(dir);
}

fn run_report(dir: &Path, extra: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_report"))
        .arg(dir.join("runs").join(NEWER))
        .args(["--reports", dir.to_str().unwrap(), "--config", "/nonexistent"])
        .args(extra)
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn the_baseline_comparison_flags_regressions_and_sets_the_exit_code() {
    // The same figures as the run before: no regression.
    let same = |r: &mut RunResults| *r = RunResults::read(&fixture(OLDER).join("results.json")).unwrap();
    let dir = reports(&[(OLDER, &unchanged), (NEWER, &same)]);
    let (code, out) = run_report(&dir, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 regression(s)"), "{out}");
    let _ = std::fs::remove_dir_all(dir);

    // Half the throughput of nats in `steady`, in every repetition: far beyond tolerance and noise.
    let slower = |r: &mut RunResults| {
        *r = RunResults::read(&fixture(OLDER).join("results.json")).unwrap();
        let stack = r.scenarios[0].stacks.iter_mut().find(|s| s.name == "nats").unwrap();
        for m in &mut stack.repetitions {
            m.achieved_rps /= 2.0;
        }
        stack.summary = bench_results::Summary::of(&stack.repetitions);
    };
    let dir = reports(&[(OLDER, &unchanged), (NEWER, &slower)]);
    let (code, out) = run_report(&dir, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("REGRESSION steady on nats: throughput"), "{out}");
    let summary = std::fs::read_to_string(dir.join("runs").join(NEWER).join("summary.md")).unwrap();
    assert!(summary.contains("regression(s) against the baseline"), "{summary}");
    let page = std::fs::read_to_string(dir.join("runs").join(NEWER).join("index.html")).unwrap();
    assert!(page.contains(">regression<"));

    // The index lists both runs, newest first, with trends.
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let (newer, older) = (index.find(NEWER).unwrap(), index.find(OLDER).unwrap());
    assert!(newer < older, "newest first");
    assert!(index.contains("Trend: steady"));
    assert_eq!(charts(&index).0, charts(&index).1, "every trend chart drawn");

    // An explicit baseline overrides the run before.
    let (code, _) = run_report(&dir, &["--baseline", dir.join("runs").join(NEWER).to_str().unwrap()]);
    assert_eq!(code, 0, "against itself nothing regressed");
    let _ = std::fs::remove_dir_all(dir);
}

/// Headless Chromium as the project's environment describes it: no background networking, a
/// fresh profile, and every network request sent to `proxy` (which counts them).
fn chromium(page: &Path, proxy: u16, args: &[&str]) -> std::process::Output {
    let profile = std::env::temp_dir().join(format!("natsrpc-chromium-{}", nuid::next()));
    let output = Command::new(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Chromium's own background services (time, sign-in, updates, safe browsing), so that
            // any request the trap sees would be the page's.
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
            "--disable-client-side-phishing-detection",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-domain-reliability",
            "--no-pings",
            "--bwsi",
            "--window-size=1200,3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{proxy}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("headless Chromium (scripts/test.sh installs Debian's chromium when it is missing)");
    let _ = std::fs::remove_dir_all(profile);
    output
}

#[test]
fn the_page_renders_in_a_real_browser_and_fetches_nothing() {
    let dir = reports(&[(OLDER, &unchanged)]);
    let run = dir.join("runs").join(OLDER);
    let made = report::report(&run, None, 0.1).unwrap();
    let page = run.join("index.html");
    std::fs::write(&page, &made.html).unwrap();

    // Anything the browser tries to fetch comes here instead.
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = trap.local_addr().unwrap().port();
    // Chromium itself still calls home (component updates, sign-in) whatever the flags; those
    // requests, like every other, end in the trap on loopback and leave nothing. The page's own
    // would name other hosts, or the page's resources.
    const CHROMIUM_ITSELF: [&str; 4] = [
        "update.googleapis.com",
        "accounts.google.com",
        "clients2.google.com",
        "optimizationguide-pa.googleapis.com",
    ];
    let attempts = Arc::new(AtomicUsize::new(0));
    trap.set_nonblocking(true).unwrap();
    let counting = Arc::clone(&attempts);
    let watcher = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline && counting.load(Ordering::SeqCst) < usize::MAX / 2 {
            if let Ok((mut stream, _)) = trap.accept() {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut first = [0u8; 512];
                let read = stream.read(&mut first).unwrap_or(0);
                let line =
                    String::from_utf8_lossy(&first[..read]).lines().next().unwrap_or_default().to_string();
                // A connection opened ahead of need and closed unused carried no request.
                if !line.is_empty() && !CHROMIUM_ITSELF.iter().any(|host| line.contains(host)) {
                    eprintln!("the page tried: {line}");
                    counting.fetch_add(1, Ordering::SeqCst);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });

    let screenshot = run.join("page.png");
    let shot = chromium(&page, port, &[&format!("--screenshot={}", screenshot.display())]);
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let png = std::fs::read(&screenshot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 20_000, "a page with content, not a blank one ({} bytes)", png.len());

    // The page as the browser built it: every chart drawn.
    let dom = chromium(&page, port, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let (count, drawn) = charts(&dom);
    assert_eq!(count, charts(&made.html).0, "the browser has every chart");
    assert_eq!(drawn, count, "each with plotted elements");

    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(attempts.load(Ordering::SeqCst), 0, "the page requested nothing; nothing left the machine");

    // The trap does catch a page that fetches something.
    let fetching = run.join("fetching.html");
    std::fs::write(&fetching, "<html><body><img src=\"http://fonts.example.net/logo.png\"></body></html>")
        .unwrap();
    chromium(&fetching, port, &["--dump-dom"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(attempts.load(Ordering::SeqCst) >= 1, "a page's request would have been seen");
    attempts.store(usize::MAX / 2, Ordering::SeqCst);
    let _ = watcher.join();
    let _ = std::fs::remove_dir_all(dir);
}

/// With `baseline` and `error_resilience` in the run, the page and the summary put each stack's
/// figures under faults beside its calm ones, as ratios.
#[test]
fn the_report_puts_error_resilience_beside_baseline() {
    fn with_faults(results: &mut RunResults) {
        let mut calm = results.scenarios[0].clone();
        calm.name = "baseline".into();
        let mut faulty = calm.clone();
        faulty.name = "error_resilience".into();
        for stack in &mut faulty.stacks {
            stack.summary.rps.median *= 0.8;
            stack.summary.p99_us.median += 2000.0;
        }
        results.scenarios.push(calm);
        results.scenarios.push(faulty);
    }
    let dir = reports(&[(OLDER, &with_faults)]);
    let made = report::report(&dir.join("runs").join(OLDER), None, 0.1).unwrap();
    assert!(made.html.contains("id=\"under-faults\""));
    assert!(made.html.contains("<td>0.80x</td>"), "throughput kept");
    assert!(made.html.contains("<td>+2.00</td>"), "p99 added");
    assert!(made.markdown.contains("## Under injected errors"), "{}", made.markdown);
    let _ = std::fs::remove_dir_all(dir);
}

/// A stack and its validation-off control in the same closed-loop scenario: the page and the
/// summary set them side by side, and "where the time goes" names what validation costs; a raw
/// echo's figure is the generator's ceiling in the method section.
#[test]
fn the_report_sets_each_stack_beside_its_build_without_validation() {
    fn with_control(results: &mut RunResults) {
        let scenario = results
            .scenarios
            .iter_mut()
            .find(|s| s.load.label() == "closed loop")
            .expect("a closed-loop scenario");
        let mut control = scenario.stacks[0].clone();
        control.unvalidated_control_of = Some(control.name.clone());
        control.name = format!("{}-unvalidated", control.name);
        control.summary.rps.median *= 1.25;
        let mut echo = control.clone();
        echo.name = "http-raw-echo".into();
        echo.unvalidated_control_of = None;
        echo.summary.rps.median = 123_456.0;
        scenario.stacks.push(control);
        scenario.stacks.push(echo);
    }
    let dir = reports(&[(OLDER, &with_control)]);
    let made = report::report(&dir.join("runs").join(OLDER), None, 0.1).unwrap();
    assert!(made.html.contains("id=\"validation-cost\""));
    assert!(made.html.contains("<td>0.80x</td>"), "throughput with validation against without");
    assert!(made.html.contains("validation, end to end (on "), "a line of where the time goes");
    assert!(made.markdown.contains("## What validation costs end to end"), "{}", made.markdown);
    assert!(
        made.html.contains("own ceiling") && made.html.contains("123456 answers/s from"),
        "the raw echo's figure"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A stack and its secured variant in the same closed-loop scenario: the page and the summary set
/// the variant beside the plain stack (with = secured, without = plain), and "where the time goes"
/// names what TLS and passwords cost.
#[test]
fn the_report_sets_each_secured_variant_beside_its_plain_stack() {
    fn with_variant(results: &mut RunResults) {
        let scenario = results
            .scenarios
            .iter_mut()
            .find(|s| s.load.label() == "closed loop")
            .expect("a closed-loop scenario");
        let mut variant = scenario.stacks[0].clone();
        variant.secured_variant_of = Some(variant.name.clone());
        variant.name = format!("{}-secured", variant.name);
        variant.summary.rps.median *= 0.75;
        scenario.stacks.push(variant);
    }
    let dir = reports(&[(OLDER, &with_variant)]);
    let made = report::report(&dir.join("runs").join(OLDER), None, 0.1).unwrap();
    assert!(made.html.contains("id=\"security-cost\"") && made.html.contains("href=\"#security-cost\""));
    assert!(made.html.contains("<td>0.75x</td>"), "throughput secured against plain");
    assert!(made.html.contains("TLS and passwords to every broker (on "), "a line of where the time goes");
    assert!(made.markdown.contains("## What security costs end to end"), "{}", made.markdown);
    assert!(!made.html.contains("id=\"validation-cost\""), "no validation pair in this run");
    let _ = std::fs::remove_dir_all(dir);
}

/// `report --help` says what it does, with examples and exit codes; a flag it does not know exits
/// 2 naming it.
#[test]
fn the_command_line_helps() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_report")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "{text}");
    for says in ["RUN_DIR", "--baseline", "Examples:", "Exit codes:"] {
        assert!(text.contains(says), "--help does not mention {says}: {text}");
    }
    let wrong = std::process::Command::new(env!("CARGO_BIN_EXE_report")).arg("--basline").output().unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("--basline"));
}
