#!/usr/bin/env bash
# Draws the report of benchmark runs from their results.json: index.html (one self-contained page,
# opens offline) and summary.md in each run folder, a short summary here, and reports/index.html
# with every run and the trends across them.
#
#   ./scripts/generate-reports.sh                          # reports/latest, against the run before it
#   ./scripts/generate-reports.sh reports/runs/2026...Z    # any run(s) again
#   ./scripts/generate-reports.sh --baseline reports/runs/2026...Z
#
# Exits 1 when a figure regressed against the baseline beyond the tolerance in
# config/benchmark-config.yaml (report.regression_tolerance) and beyond the runs' noise.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin report
exec target/release/report "$@"
