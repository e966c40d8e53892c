#!/usr/bin/env bash
# Starts comparison stacks by name (see `config/benchmark-config.yaml`; default: all but the
# NATS ones that would share a server), after making sure the brokers run and the release
# binaries are built. Each stack is checked ready before this returns; stop them with
# ./scripts/stop-stacks.sh, which stops them by PID.
#
#   ./scripts/start-stacks.sh http-redis http-rabbitmq
#   CONFIG=my-config.yaml ./scripts/start-stacks.sh nats
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/start-test-services.sh
echo "== building (release)"
cargo build --release --quiet --bin nats-services --bin http-redis --bin http-rabbitmq \
  --bin echo-vs-raw --bin stacks
if [ $# -eq 0 ]; then set -- nats http-memory http-redis http-rabbitmq; fi
exec target/release/stacks up "$@" --config "${CONFIG:-config/benchmark-config.yaml}"
