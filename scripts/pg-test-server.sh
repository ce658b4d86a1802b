#!/usr/bin/env bash
# A throwaway PostgreSQL for the cluster tests and bench/cluster.ts, on a free
# loopback port in a temporary directory.
#
#   scripts/pg-test-server.sh run -- CMD [ARGS…]   start, run CMD with COTERIE_TEST_PG_URL set, stop, exit with CMD's status
#   scripts/pg-test-server.sh start                start; prints the URL on line 1 and the directory on line 2
#   scripts/pg-test-server.sh stop DIR             stop the server started in DIR and remove DIR
#
# On a fresh Debian machine, as root, it installs Debian's `postgresql` when
# the binaries are missing. PostgreSQL refuses to run as root: the server then
# runs as the `postgres` user (created by the package), in a directory it owns.
# Trust authentication on 127.0.0.1 only; fsync off (a test server: the tests
# kill trackers, never the database) unless PG_TEST_FSYNC=on.
set -euo pipefail
shopt -s inherit_errexit

PG_TOOL=pg-test-server
# shellcheck source=lib/pg.sh
source "$(dirname "$0")/lib/pg.sh"

start() {
  ensure_binaries
  local dir port
  dir=$(make_server_dir coterie-pg)
  init_data "$dir" data
  for attempt in 1 2 3; do
    port=$(free_port)
    if as_owner "$BIN_DIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${PG_TEST_FSYNC:-off} -c synchronous_commit=on -c shared_buffers=128MB" \
      start >/dev/null; then
      break
    fi
    [ "$attempt" -eq 3 ] && { cat "$dir/server.log" >&2; exit 1; }
  done
  as_owner "$BIN_DIR/createdb" -h 127.0.0.1 -p "$port" -U postgres coterie_test
  echo "postgres://postgres@127.0.0.1:$port/coterie_test"
  echo "$dir"
}

stop() {
  local dir=$1
  [ -d "$dir/data" ] || { echo "pg-test-server: no server in $dir" >&2; exit 1; }
  ensure_binaries
  as_owner "$BIN_DIR/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  run)
    shift
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || { echo "usage: $0 run -- CMD [ARGS…]" >&2; exit 2; }
    out=$(start)
    url=$(echo "$out" | sed -n 1p)
    dir=$(echo "$out" | sed -n 2p)
    trap 'stop "$dir"' EXIT
    echo "pg-test-server: PostgreSQL at $url" >&2
    status=0
    COTERIE_TEST_PG_URL="$url" "$@" || status=$?
    exit "$status"
    ;;
  *)
    echo "usage: $0 start | stop DIR | run -- CMD [ARGS…]" >&2
    exit 2
    ;;
esac
