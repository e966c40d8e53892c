#!/usr/bin/env bash
# The project's test command: brokers up, formatting, lints, every test, and the NATS Services API
# conformance check of a running service from an outside client.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/start-test-services.sh

if ! command -v cargo >/dev/null 2>&1; then
  echo "test: cargo is missing: install a Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi

# The report's end-to-end test opens the page in Debian's headless Chromium.
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (for the report's browser test)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The benchmark's validation-off control build (natsrpc's unvalidated-control feature) compiles too.
cargo clippy -p natsrpc --features unvalidated-control --quiet -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --quiet
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"

echo "== NATS Services API conformance"
./scripts/check-services-api.sh 2>&1 | tee -a "$log"

# One closing line for people and CI: every cargo test and every conformance check.
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  /^ok   /   { p++ }
  /^FAIL /   { f++ }
  END { printf "%d passed, %d failed\n", p, f }
' "$log"
