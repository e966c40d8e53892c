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
cargo build --quiet -p ecommerce -p analytics -p fileproc
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# service name, binary
services=("echo target/debug/examples/echo" "ecommerce target/debug/ecommerce" "analytics target/debug/analytics" "fileproc target/debug/fileproc")
for entry in "${services[@]}"; do
  read -r name binary <<<"$entry"
  RUST_LOG=warn "$binary" &
  pids+=($!)
  for _ in $(seq 1 100); do
    python3 - "$name" <<'PY' && break
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
  echo "-- $name"
  python3 "$check" "$name"
done
