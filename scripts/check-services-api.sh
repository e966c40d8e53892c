#!/usr/bin/env bash
# Runs the shared Services API conformance check (an outside client, nats-py) against each service
# this project builds, started here (on the shared NATS server; the archive on one of this
# script's own) and stopped by PID afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

check=../shared/tools/services-api-check.py
if [ ! -f "$check" ]; then
  echo "check-services-api: $check not found; skipped"
  exit 0
fi
python3 -c 'import nats' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check nats-py

cargo build --quiet -p natsrpc --example echo --example fleet
cargo build --quiet -p ecommerce -p analytics -p fileproc -p stack
pid=""
nats_pid=""
nats_dir=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  if [ -n "$nats_pid" ]; then kill "$nats_pid" 2>/dev/null || true; wait "$nats_pid" 2>/dev/null || true; fi
  if [ -n "$nats_dir" ]; then rm -rf "$nats_dir"; fi
}
trap cleanup EXIT
export NATS_URL=nats://127.0.0.1:4222

wait_for_ping() { # service
  for _ in $(seq 1 100); do
    python3 - "$1" <<'PY' && return 0
import asyncio, os, sys, nats
async def main():
    nc = await nats.connect(os.environ["NATS_URL"])
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
  "fleet|target/debug/examples/fleet|"
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
# The archive: listeners on the shop's JetStream events, and one endpoint. On a nats-server of
# this script's own, so that its durable consumers and the events' stream are not left on the
# shared one; no database is needed to be discovered (it connects on first use).
nats_dir=$(mktemp -d)
nats_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$nats_dir" >/dev/null 2>&1 &
nats_pid=$!
export NATS_URL="nats://127.0.0.1:$nats_port"
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done
env RUST_LOG=warn STORE=memory SERVICES=analytics ORDER_EVENTS=on ARCHIVE_URL=postgres://postgres@127.0.0.1:1/none \
  target/debug/nats-services &
pid=$!
wait_for_ping archive || { echo "check-services-api: archive did not answer \$SRV.PING"; exit 1; }
echo "-- archive (nats-services, ORDER_EVENTS=on ARCHIVE_URL=...)"
python3 "$check" archive
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=""

# The control's state in Redis (its catalog) goes with it.
if command -v redis-cli >/dev/null 2>&1; then
  redis-cli --scan --pattern 'natsrpc-api-check:*' | xargs -r redis-cli del >/dev/null
fi
