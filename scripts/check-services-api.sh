#!/usr/bin/env bash
# Runs the shared Services API conformance check (an outside client, nats-py) against each service
# this project builds, started here on the shared NATS server and stopped by PID afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

check=../shared/tools/services-api-check.py
if [ ! -f "$check" ]; then
  echo "check-services-api: $check not found; skipped"
  exit 0
fi
python3 -c 'import nats' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check nats-py

cargo build --quiet -p natsrpc --example echo
cargo build --quiet -p ecommerce -p analytics -p fileproc -p stack
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

wait_for_ping() { # service
  for _ in $(seq 1 100); do
    python3 - "$1" <<'PY' && return 0
import asyncio, sys, nats
async def main():
    nc = await nats.connect("nats://127.0.0.1:4222")
    try:
        await nc.request(f"$SRV.PING.{sys.argv[1]}", b"", timeout=0.2)
    finally:
        await nc.close()
asyncio.run(main())
PY
    sleep 0.1
  done
  return 1
}

# One process at a time, stopped (by PID) before the next: "services, binary, environment".
# The last is the comparison's control, the three services in one process over Redis.
runs=(
  "echo|target/debug/examples/echo|"
  "ecommerce|target/debug/ecommerce|"
  "analytics|target/debug/analytics|"
  "fileproc|target/debug/fileproc|"
  "ecommerce analytics fileproc|target/debug/nats-services|STORE=redis REDIS_PREFIX=natsrpc-api-check"
)
for run in "${runs[@]}"; do
  IFS='|' read -r names binary environment <<<"$run"
  # shellcheck disable=SC2086 # the environment is words on purpose
  env RUST_LOG=warn $environment "$binary" &
  pid=$!
  for name in $names; do
    wait_for_ping "$name" || { echo "check-services-api: $name did not answer \$SRV.PING"; exit 1; }
    echo "-- $name ($(basename "$binary"))"
    python3 "$check" "$name"
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
done
# The control's state in Redis (its catalog) goes with it.
if command -v redis-cli >/dev/null 2>&1; then
  redis-cli --scan --pattern 'natsrpc-api-check:*' | xargs -r redis-cli del >/dev/null
fi
