//! `report`: draws the report of benchmark runs from their `results.json`.
//!
//! ```text
//! report [RUN_DIR ...] [--baseline RUN_DIR] [--config FILE] [--reports DIR]
//! ```
//! Writes `index.html` and `summary.md` into each run folder (default `reports/latest`), prints a
//! short summary, and refreshes `reports/index.html`. The baseline is `--baseline`, else the run
//! before each one on disk. Exits 1 when a figure regressed beyond the tolerance in the config's
//! `report.regression_tolerance` (and beyond the runs' noise), 2 on bad arguments or files.

use std::path::PathBuf;
use std::process::ExitCode;

use bench_report::{self as report, ReportError, ReportSettings};

struct Args {
    runs: Vec<PathBuf>,
    baseline: Option<PathBuf>,
    config: PathBuf,
    reports: PathBuf,
}

fn parse() -> Result<Args, ReportError> {
    let mut args = Args {
        runs: Vec::new(),
        baseline: None,
        config: PathBuf::from("config/benchmark-config.yaml"),
        reports: PathBuf::from("reports"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value =
            || it.next().map(PathBuf::from).ok_or_else(|| ReportError::Usage(format!("{arg} needs a value")));
        match arg.as_str() {
            "--baseline" => args.baseline = Some(value()?),
            "--config" => args.config = value()?,
            "--reports" => args.reports = value()?,
            flag if flag.starts_with("--") => {
                return Err(ReportError::Usage(format!(
                    "unknown option {flag}; report [RUN_DIR ...] [--baseline RUN_DIR] [--config FILE] [--reports DIR]"
                )));
            }
            run => args.runs.push(PathBuf::from(run)),
        }
    }
    if args.runs.is_empty() {
        args.runs.push(args.reports.join("latest"));
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("report: {error}");
            ExitCode::from(2)
        }
    }
}

/// Answers whether no run regressed.
fn run() -> Result<bool, ReportError> {
    let args = parse()?;
    let settings =
        if args.config.exists() { ReportSettings::read(&args.config)? } else { ReportSettings::default() };
    let tolerance = settings.regression_tolerance;
    let mut clean = true;
    for run in &args.runs {
        let run = run.canonicalize().map_err(|source| ReportError::Io { path: run.clone(), source })?;
        let baseline = args.baseline.clone().or_else(|| report::previous_run(&run));
        let made = report::report(&run, baseline.as_deref(), tolerance)?;
        let write = |name: &str, text: &str| {
            std::fs::write(run.join(name), text)
                .map_err(|source| ReportError::Io { path: run.join(name), source })
        };
        write("index.html", &made.html)?;
        write("summary.md", &made.markdown)?;
        print!("{}", made.terminal);
        for regression in &made.regressions {
            println!(
                "REGRESSION {} on {}: {} {:.2} -> {:.2} ({:+.1}%, beyond the {:.0}% tolerance and ±{:.1}% noise)",
                regression.scenario,
                regression.stack,
                regression.figure,
                regression.before,
                regression.after,
                regression.change * 100.0,
                tolerance * 100.0,
                regression.noise * 100.0
            );
        }
        clean &= made.regressions.is_empty();
    }
    if args.reports.join("runs").is_dir() {
        let index = args.reports.join("index.html");
        std::fs::write(&index, report::index::page(&args.reports))
            .map_err(|source| ReportError::Io { path: index.clone(), source })?;
        println!("all runs: {}", index.display());
    }
    Ok(clean)
}
