#!/usr/bin/env bash
# Makes sure the brokers the tests and benchmarks need listen on their standard 127.0.0.1 ports:
#   NATS with JetStream :4222, Redis :6379, RabbitMQ :5672 (guest/guest),
# and that openssl is there: the TLS tests and the benchmark's secured stacks make their
# certificates with it; and PostgreSQL's server programs: the archive's tests and the benchmark's
# archiving scenarios make clusters of their own with them (initdb, postgres on a free port), so
# no PostgreSQL needs to be running (installing Debian's package may create and start its own
# cluster on :5432 too; nothing here uses it); and HAProxy, which the benchmark runs in front of
# an HTTP stack's instances.
# Starts each one that is not listening, installing its Debian package first when its program is
# missing. Idempotent: run it as often as you like. Exits non-zero, saying which, when one cannot
# be started.
set -uo pipefail

log() { printf 'start-test-services: %s\n' "$*"; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

apt_updated=""
install_package() { # package
  if ! command -v apt-get >/dev/null 2>&1; then
    log "cannot install $1: no apt-get on this machine; install it by hand"
    return 1
  fi
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    $SUDO apt-get update -qq >/dev/null || { log "apt-get update failed"; return 1; }
    apt_updated=1
  fi
  log "installing $1"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$1" >/dev/null || { log "installing $1 failed"; return 1; }
}

# The program's path, installing its package when it is missing.
ensure_program() { # program package
  local path
  path=$(command -v "$1" 2>/dev/null || true)
  [ -z "$path" ] && [ -x "/usr/sbin/$1" ] && path="/usr/sbin/$1"
  if [ -z "$path" ]; then
    install_package "$2" || return 1
    path=$(command -v "$1" 2>/dev/null || true)
    [ -z "$path" ] && [ -x "/usr/sbin/$1" ] && path="/usr/sbin/$1"
  fi
  [ -n "$path" ] || { log "$1 is still missing after installing $2"; return 1; }
  printf '%s' "$path"
}

wait_for() { # port seconds name
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    listening "$1" && return 0
    sleep 0.5
  done
  log "$3 did not start listening on 127.0.0.1:$1 within $2 s"
  return 1
}

start_nats() {
  local bin
  bin=$(ensure_program nats-server nats-server) || return 1
  $SUDO mkdir -p /var/lib/nats-server /var/log
  if command -v start-stop-daemon >/dev/null 2>&1; then
    $SUDO start-stop-daemon --start --oknodo --background --exec "$bin" -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  else
    nohup $SUDO "$bin" -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log >/dev/null 2>&1 &
  fi
  wait_for 4222 20 nats-server
}

start_redis() {
  local bin
  bin=$(ensure_program redis-server redis-server) || return 1
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO "$bin" --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/natsrpc.log >/dev/null
  wait_for 6379 20 redis-server
}

start_rabbitmq() {
  ensure_program rabbitmq-server rabbitmq-server >/dev/null || return 1
  # A fresh install may have started it already through the package's own scripts.
  listening 5672 || $SUDO rabbitmq-server -detached >/dev/null 2>&1
  # The Erlang VM takes a while to boot.
  wait_for 5672 120 rabbitmq-server
}

# PostgreSQL's server programs, where Debian puts them (or $PG_BIN).
postgres_installed() {
  if [ -n "${PG_BIN:-}" ]; then [ -x "$PG_BIN/postgres" ]; return; fi
  compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null
}

ensure_postgres() {
  postgres_installed && return 0
  install_package postgresql || return 1
  postgres_installed || { log "no /usr/lib/postgresql/*/bin/postgres after installing postgresql"; return 1; }
}

failed=()
ensure_program openssl openssl >/dev/null || failed+=("openssl")
ensure_postgres || failed+=("postgresql")
# The load balancer the benchmark puts in front of an HTTP stack's instances (the runner starts it
# with a configuration of its own; a copy the package may have started listens on nothing here).
ensure_program haproxy haproxy >/dev/null || failed+=("haproxy")
for service in "nats:4222" "redis:6379" "rabbitmq:5672"; do
  name=${service%%:*}
  port=${service##*:}
  if listening "$port"; then
    log "$name already listening on 127.0.0.1:$port"
  elif "start_$name"; then
    log "$name started on 127.0.0.1:$port"
  else
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  log "FAILED to start or install: ${failed[*]} (see the messages above)"
  exit 1
fi
