#!/usr/bin/env bash
# Stops the stacks ./scripts/start-stacks.sh started (all, or those named), by PID, and removes
# their keys from Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x target/release/stacks ]; then cargo build --release --quiet --bin stacks; fi
exec target/release/stacks down "$@" --config "${CONFIG:-config/benchmark-config.yaml}"
