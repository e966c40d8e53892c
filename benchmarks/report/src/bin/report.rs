//! `report`: draws the report of benchmark runs from their `results.json`.
//!
//! ```text
//! report [RUN_DIR ...] [--baseline RUN_DIR] [--config FILE] [--reports DIR]
//! ```
//! (`report --help` for more.)
//! Writes `index.html` and `summary.md` into each run folder (default `reports/latest`), prints a
//! short summary, and refreshes `reports/index.html`. The baseline is `--baseline`, else the run
//! before each one on disk. Exits 1 when a figure regressed beyond the tolerance in the config's
//! `report.regression_tolerance` (and beyond the runs' noise), 2 on bad arguments or files.

use std::path::PathBuf;
use std::process::ExitCode;

use bench_report::{self as report, ReportError, ReportSettings};

/// Draws the report of benchmark runs from their results.json: index.html and summary.md in each
/// run folder, a short summary here, and reports/index.html over every run.
#[derive(Debug, clap::Parser)]
#[command(
    name = "report",
    version,
    after_help = "Examples:\n  report                                   the latest run (reports/latest), against the run before it\n  report reports/runs/20261130T204840Z     one run\n  report --baseline reports/runs/A reports/runs/B\n\nExit codes:\n  0  no figure regressed beyond the config's report.regression_tolerance (and the runs' noise)\n  1  a figure regressed\n  2  bad arguments, or a run or file that cannot be read"
)]
struct Args {
    /// Run folders (`reports/runs/<UTC time>`); the latest run when none is named.
    #[arg(value_name = "RUN_DIR")]
    runs: Vec<PathBuf>,
    /// The run to compare against; the run before each one on disk when unset.
    #[arg(long, value_name = "RUN_DIR")]
    baseline: Option<PathBuf>,
    /// The configuration whose `report` settings apply (its defaults when the file is missing).
    #[arg(long, value_name = "FILE", default_value = "config/benchmark-config.yaml")]
    config: PathBuf,
    /// Where runs are (the latest, and the index of every run).
    #[arg(long, value_name = "DIR", default_value = "reports")]
    reports: PathBuf,
}

fn parse() -> Args {
    // `--help` prints and exits 0; a usage error prints and exits 2.
    let mut args = <Args as clap::Parser>::parse();
    if args.runs.is_empty() {
        args.runs.push(args.reports.join("latest"));
    }
    args
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
    let args = parse();
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
