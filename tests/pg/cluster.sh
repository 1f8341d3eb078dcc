#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway PostgreSQL cluster for the tests, from Debian's packages.
#
#   tests/pg/cluster.sh start DIR   initdb in DIR/data, start the server on a
#                                   Unix socket in DIR only (no TCP), create
#                                   the database be_test; print its DSN
#   tests/pg/cluster.sh env DIR     print BE_TEST_PG_DSN=<dsn> for DIR's cluster
#   tests/pg/cluster.sh stop DIR    stop the server, remove DIR
#   tests/pg/cluster.sh restart DIR stop (fast) and start again, same DSN
#
# The server never runs as root: when run as root, initdb and pg_ctl run as
# the user postgres (made by the postgresql package), or nobody; DIR is
# handed to that user and left searchable so root can use the socket.
# The tests run with fsync=off (fast, not crash-safe); BE_PG_DURABLE=1
# starts the server with fsync=on (synchronous_commit stays at its default,
# on) for benchmark figures a host can compare with.
# Exit status 0 on success; start prints why it failed on stderr and exits
# 1 when no server could be started (the tests then report SKIPPED).
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|env|restart DIR" >&2; exit 2; }

say() { echo "pg-cluster: $*" >&2; }

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || return 1
  echo "$d"
}

# Run a server binary as a non-root user when we are root.
as_owner() {
  if [ "$(id -u)" -ne 0 ]; then "$@"; return; fi
  local u=postgres
  id -u "$u" >/dev/null 2>&1 || u=nobody
  runuser -u "$u" -- "$@"
}

owner() {
  if [ "$(id -u)" -ne 0 ]; then id -un; return; fi
  if id -u postgres >/dev/null 2>&1; then echo postgres; else echo nobody; fi
}

dsn() { echo "postgresql:///be_test?host=$dir&port=5432&user=be"; }

start() {
  local bin fsync=off
  [ "${BE_PG_DURABLE:-0}" = 1 ] && fsync=on
  bin=$(bindir) || { say "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)"; exit 1; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 755 "$dir"
  [ "$(id -u)" -ne 0 ] || chown "$(owner)" "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$dir/data" -U be --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
      >"$dir/initdb.log" 2>&1 || { say "initdb failed:"; cat "$dir/initdb.log" >&2; exit 1; }
  fi
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c port=5432 -c fsync=$fsync -c max_connections=200" \
    start >"$dir/pg_ctl.log" 2>&1 || { say "pg_ctl start failed:"; cat "$dir/pg_ctl.log" "$dir/server.log" >&2; exit 1; }
  if ! "$bin/psql" -h "$dir" -p 5432 -U be -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'be_test'" | grep -q 1; then
    "$bin/createdb" -h "$dir" -p 5432 -U be be_test || { say "createdb failed"; exit 1; }
  fi
  dsn
}

stop() {
  local bin
  bin=$(bindir) || return 0
  [ -d "$dir" ] || return 0
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || say "pg_ctl stop failed"
  fi
}

case "$cmd" in
  start) start ;;
  env) dir=$(cd "$dir" && pwd); echo "BE_TEST_PG_DSN=$(dsn)" ;;
  stop) stop; rm -rf "$dir" ;;
  restart)
    bin=$(bindir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    start >/dev/null
    ;;
  *) echo "usage: $0 start|stop|env|restart DIR" >&2; exit 2 ;;
esac
