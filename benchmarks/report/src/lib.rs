//! Reports of a benchmark run, from its `results.json` only (so any old run can be reported
//! again): one self-contained HTML page with inline SVG charts, a Markdown summary, a terminal
//! summary, the comparison against a baseline run, and the index of every run with trends.
//!
//! It depends on [`bench_results`] and nothing that talks to a broker: the `report` binary builds
//! and runs on a machine that has only the run folders.
//!
//! - [`analysis`]: what the figures say (rankings, knees, where the time goes, regressions);
//! - [`charts`]: the SVG charts, and each stack's colour;
//! - [`context`]: the run, its baseline and the comparison, which every output is made from;
//! - [`html`], [`markdown`]: the page and the summary;
//! - [`text`]: text made safe for the page, figures as the tables write them;
//! - [`scenario_views`]: what only some scenarios show (fan-out, stock books, convergence, soak);
//! - [`index`]: `reports/index.html`, every run newest first, with trend lines.

pub mod analysis;
pub mod charts;
pub mod context;
pub mod html;
pub mod index;
pub mod markdown;
pub mod scenario_views;
pub mod text;

use std::path::{Path, PathBuf};

use bench_results::{ResultsError, RunResults};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A run's results could not be read.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// Writing a page, or reading the configuration, failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration's `report:` section is not what it should be.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: serde_yaml::Error,
    },
    /// The configuration's `report:` section has a value no report can use.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key and why.
        problem: String,
    },
}

/// How reports judge a run against a baseline: the `report:` section of
/// `config/benchmark-config.yaml` (the rest of the file is the runner's).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// A figure worse than the baseline's by more than this share (and by more than the noise of
    /// both runs' repetitions) is a regression, which makes the command exit non-zero.
    pub regression_tolerance: f64,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self { regression_tolerance: 0.20 }
    }
}

impl ReportSettings {
    /// The `report:` section of the configuration file at `path` (the defaults when it has none).
    pub fn read(path: &Path) -> Result<Self, ReportError> {
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            report: ReportSettings,
        }
        let text = std::fs::read_to_string(path)
            .map_err(|source| ReportError::Io { path: path.to_path_buf(), source })?;
        let file: File = serde_yaml::from_str(&text)
            .map_err(|source| ReportError::Config { path: path.to_path_buf(), source })?;
        match file.report.problem() {
            Some(problem) => Err(ReportError::Invalid { path: path.to_path_buf(), problem }),
            None => Ok(file.report),
        }
    }

    /// What is wrong with these settings, if anything: a tolerance that is not a share of 0 or
    /// more (YAML's `.nan` would let every regression through; a negative one flags them all).
    pub fn problem(&self) -> Option<String> {
        let tolerance = self.regression_tolerance;
        (!(tolerance.is_finite() && tolerance >= 0.0)).then(|| {
            format!("report.regression_tolerance: a share of 0 or more (0.2 is 20%), not {tolerance}")
        })
    }
}

/// A run's report, written into its folder.
#[derive(Debug)]
pub struct Report {
    /// `index.html`.
    pub html: String,
    /// `summary.md`.
    pub markdown: String,
    /// What the command prints.
    pub terminal: String,
    /// Figures worse than the baseline's beyond tolerance and noise.
    pub regressions: Vec<analysis::Delta>,
}

/// Reports `run` (a run folder), against `baseline` when given.
pub fn report(run: &Path, baseline: Option<&Path>, tolerance: f64) -> Result<Report, ReportError> {
    let results = RunResults::read(&run.join("results.json"))?;
    let base = baseline
        .map(|dir| RunResults::read(&dir.join("results.json")).map(|r| (dir.to_path_buf(), r)))
        .transpose()?;
    let deltas = base.as_ref().map(|(_, b)| analysis::compare(&results, b, tolerance)).unwrap_or_default();
    let regressions: Vec<_> = deltas.iter().filter(|d| d.regression).cloned().collect();
    let criterion = analysis::criterion_estimates(&crate::criterion_dir(run));
    let context = context::Context {
        results: &results,
        baseline: base.as_ref().map(|(dir, r)| (dir.as_path(), r)),
        deltas: &deltas,
        tolerance,
        criterion: &criterion,
    };
    Ok(Report {
        html: html::page(&context),
        markdown: markdown::summary(&context),
        terminal: markdown::terminal(&context, &run.join("index.html")),
        regressions,
    })
}

/// Where criterion keeps its estimates: `target/criterion` of the workspace the run came from.
pub fn criterion_dir(run: &Path) -> PathBuf {
    let workspace = run.ancestors().find(|dir| dir.join("Cargo.toml").exists()).map(Path::to_path_buf);
    workspace.unwrap_or_else(|| PathBuf::from(".")).join("target/criterion")
}

/// The run folder before `run` among `runs` (by name, which is its UTC start time).
pub fn previous_run(run: &Path) -> Option<PathBuf> {
    let run = run.canonicalize().ok()?;
    let runs = run.parent()?;
    let mut earlier: Vec<PathBuf> = std::fs::read_dir(runs)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("results.json").exists() && p.file_name() < run.file_name())
        .collect();
    earlier.sort();
    earlier.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tolerance_no_report_can_use_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("natsrpc-report-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.yaml");
        for (yaml, tolerance) in
            [("report: {regression_tolerance: 0.1}\nstacks: {}\n", Some(0.1)), ("stacks: {}\n", Some(0.2))]
        {
            std::fs::write(&path, yaml).unwrap();
            assert_eq!(ReportSettings::read(&path).ok().map(|s| s.regression_tolerance), tolerance);
        }
        for bad in [".nan", "-0.1", ".inf"] {
            std::fs::write(&path, format!("report: {{regression_tolerance: {bad}}}\n")).unwrap();
            let error = ReportSettings::read(&path).unwrap_err().to_string();
            assert!(error.contains("report.regression_tolerance: a share of 0 or more"), "{bad}: {error}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
