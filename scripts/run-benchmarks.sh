#!/usr/bin/env bash
# The project's main job: the comparison benchmark on config/benchmark-config.yaml.
#
# Makes sure the brokers run (installing them on a fresh machine), builds the stacks and the runner
# in release mode, and runs `bench`, which starts and stops every stack itself and writes
# reports/runs/<UTC time>/ (results.json, CSV, interval histogram logs), with reports/latest
# pointing at it. Then `./scripts/generate-reports.sh` draws the report.
#
#   ./scripts/run-benchmarks.sh                      # the default comparison (about 20 minutes)
#   PROFILE=quick ./scripts/run-benchmarks.sh        # a smoke run (about 3 minutes once built)
#   SCENARIOS=stress_test STACKS=nats,http-redis DURATION=10s ./scripts/run-benchmarks.sh
#   ./scripts/run-benchmarks.sh --config my.yaml
#   ./scripts/run-benchmarks.sh run --stacks nats --scenarios baseline --duration 5s
#   ./scripts/run-benchmarks.sh --help               # bench's options and exit codes (after the build)
#
# Exit status: 0, or 1 when a performance expectation was missed, 2 when the configuration was
# refused (nothing ran), 3 when the run failed. ECHO_VS_RAW=1 also measures the framework's own
# overhead against a raw async-nats responder (benchmarks/runner/src/bin/echo-vs-raw.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/start-test-services.sh
echo "== building (release)"
cargo build --release --quiet --bin bench --bin nats-services --bin http-redis --bin http-rabbitmq \
  --bin echo-vs-raw --bin stacks
if [ "${ECHO_VS_RAW:-0}" = 1 ]; then
  cargo build --release --quiet -p natsrpc --example echo
fi
# The validation-off controls: the same stack binaries built with natsrpc's unvalidated-control
# feature into a target directory of their own, so that the feature never reaches the binaries
# above. Built from the whole workspace like them (no -p), so that every other dependency has the
# same features as in the stacks they are compared with. The first build takes a few minutes.
echo "== building the validation-off controls (release, target/unvalidated)"
cargo build --release --quiet --bin nats-services --bin http-redis \
  --features natsrpc/unvalidated-control --target-dir target/unvalidated
mkdir -p target/release/unvalidated
cp target/unvalidated/release/nats-services target/unvalidated/release/http-redis target/release/unvalidated/

status=0
target/release/bench "$@" || status=$?
if [ "${ECHO_VS_RAW:-0}" = 1 ] && [ -L reports/latest ]; then
  target/release/echo-vs-raw --rounds "${ROUNDS:-5}" --json reports/latest/echo-vs-raw.json | tee reports/latest/echo-vs-raw.txt
fi
exit "$status"
