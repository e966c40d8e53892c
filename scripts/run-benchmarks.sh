#!/usr/bin/env bash
# The project's main job: runs the benchmark suite and writes its results under reports/.
#
# Today the suite is the framework-overhead benchmark (natsrpc's echo service against a raw
# async-nats responder under the same load, alternating, ratios from one run). The YAML-driven
# comparison of the three stacks replaces this script's body when the runner lands.
#
# Environment: ROUNDS (default 5), DURATION seconds per measurement (5), WARMUP seconds (1),
# CONCURRENCY requests in flight (64), NATS_URL (nats://127.0.0.1:4222).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/start-test-services.sh
echo "== building (release)"
cargo build --release --quiet -p natsrpc --example echo
cargo build --release --quiet -p benchmarks --bins

run_dir="reports/runs/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run_dir"
target/release/echo-vs-raw \
  --rounds "${ROUNDS:-5}" --duration "${DURATION:-5}" --warmup "${WARMUP:-1}" \
  --concurrency "${CONCURRENCY:-64}" --json "$run_dir/echo-vs-raw.json" | tee "$run_dir/echo-vs-raw.txt"
ln -sfn "runs/$(basename "$run_dir")" reports/latest
echo "results: $run_dir (reports/latest)"
