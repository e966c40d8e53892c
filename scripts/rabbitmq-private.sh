#!/bin/sh
# A private RabbitMQ node for the benchmark's secured stack (`http-rabbitmq-secured`), never the
# shared broker: TLS only on 127.0.0.1:PORT (its Erlang distribution on PORT+1), one user `bench`
# with the run's password owning the virtual host `bench`, no guest, no plugins. The certificates
# and the password are the ones the runner made for the run and gives its processes
# ($BENCH_TLS_CA, $BENCH_TLS_CERT, $BENCH_TLS_KEY, $BENCH_SECRET); the node's files go beside
# them and are removed with them when the run ends. It execs the broker, so that the PID the
# runner stops is the broker's.
#
#   scripts/rabbitmq-private.sh PORT
set -eu
umask 077
port=${1:?usage: rabbitmq-private.sh PORT}
: "${BENCH_TLS_CA:?} ${BENCH_TLS_CERT:?} ${BENCH_TLS_KEY:?} ${BENCH_SECRET:?}"
dir=$(dirname "$BENCH_TLS_CA")/rabbitmq-$port
rm -rf "$dir"
mkdir -p "$dir"
cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$port
ssl_options.cacertfile = $BENCH_TLS_CA
ssl_options.certfile = $BENCH_TLS_CERT
ssl_options.keyfile = $BENCH_TLS_KEY
ssl_options.verify = verify_none
default_user = bench
default_pass = $BENCH_SECRET
default_vhost = bench
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
CONF
echo "[]." > "$dir/enabled_plugins"
# RUNNING_UNDER_SYSTEMD: the Debian script then execs the Erlang VM in this process.
export RUNNING_UNDER_SYSTEMD=1 HOME="$dir" \
  RABBITMQ_NODENAME="natsrpc-bench-$port@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT=$((port + 1)) \
  RABBITMQ_CONFIG_FILE="$dir/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
  RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_PLUGINS_EXPAND_DIR="$dir/plugins"
exec "${RABBITMQ_SERVER_BIN:-/usr/lib/rabbitmq/bin/rabbitmq-server}"
