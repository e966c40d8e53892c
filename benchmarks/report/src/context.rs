//! What the page and the summaries are made from: the run, its baseline and the comparison.

use std::collections::BTreeMap;
use std::path::Path;

use bench_results::RunResults;

use crate::analysis::Delta;

/// Everything the page and the summaries are made from.
pub struct Context<'a> {
    /// The run.
    pub results: &'a RunResults,
    /// The baseline run, with its folder.
    pub baseline: Option<(&'a Path, &'a RunResults)>,
    /// Figures against the baseline.
    pub deltas: &'a [Delta],
    /// The regression tolerance.
    pub tolerance: f64,
    /// Criterion's estimates (ns) by benchmark id.
    pub criterion: &'a BTreeMap<String, f64>,
}
