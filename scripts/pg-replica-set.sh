#!/usr/bin/env bash
# A throwaway PostgreSQL primary with streaming standbys, for the store
# failover tests (test/cluster/store-failover.test.ts) and for trying the
# layout by hand: every node on a free loopback port, in one temporary
# directory, run as the postgres user when started as root (scripts/lib/pg.sh,
# shared with scripts/pg-test-server.sh, which installs Debian's postgresql as root).
#
#   scripts/pg-replica-set.sh start [STANDBYS] [sync|async]
#       a primary (node n0) and STANDBYS (1 or 2, default 1) standbys n1, n2 made with
#       pg_basebackup -R; `sync` (the default): the primary's synchronous_standby_names is
#       'ANY 1 (n1, n2)', so a commit waits for a standby's flush. Prints the multi-host URL of
#       database coterie_test (primary first) on line 1 and the directory on line 2;
#       DIR/nodes lists "NAME PORT" per node.
#   scripts/pg-replica-set.sh kill DIR NODE      SIGKILL the node's postmaster and its backends
#   scripts/pg-replica-set.sh promote DIR NODE   promote a standby (pg_ctl promote, waits)
#   scripts/pg-replica-set.sh stop DIR           stop every node and remove DIR
#
# A promoted standby keeps no synchronous_standby_names: with nobody to follow it, its
# commits would hang. Trust authentication on 127.0.0.1 only; fsync off (the tests kill
# servers, never the machine) unless PG_TEST_FSYNC=on.
set -euo pipefail
shopt -s inherit_errexit

PG_TOOL=pg-replica-set
# shellcheck source=lib/pg.sh
source "$(dirname "$0")/lib/pg.sh"

# start_node DIR NAME [extra -c settings…]: starts DIR/NAME on a free port, appends "NAME PORT" to DIR/nodes.
start_node() {
  local dir=$1 name=$2 port attempt
  shift 2
  for attempt in 1 2 3; do
    port=$(free_port)
    if as_owner "$BIN_DIR/pg_ctl" -D "$dir/$name" -l "$dir/$name.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c cluster_name=$name -c max_connections=200 -c fsync=${PG_TEST_FSYNC:-off} -c shared_buffers=32MB -c wal_keep_size=256MB $*" \
      start >/dev/null; then
      echo "$name $port" >>"$dir/nodes"
      return 0
    fi
  done
  cat "$dir/$name.log" >&2
  exit 1
}

port_of() {
  awk -v n="$2" '$1 == n { print $2 }' "$1/nodes"
}

start() {
  local standbys=${1:-1} mode=${2:-sync}
  [[ "$standbys" =~ ^[12]$ ]] || { echo "pg-replica-set: 1 or 2 standbys" >&2; exit 2; }
  ensure_binaries
  local dir names="" i primary_port hosts
  dir=$(make_server_dir coterie-pgrs)
  : >"$dir/nodes"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/nodes"
  init_data "$dir" n0
  for i in $(seq 1 "$standbys"); do names="$names${names:+, }n$i"; done
  start_node "$dir" n0
  primary_port=$(port_of "$dir" n0)
  as_owner "$BIN_DIR/createdb" -h 127.0.0.1 -p "$primary_port" -U postgres coterie_test
  hosts="127.0.0.1:$primary_port"
  for i in $(seq 1 "$standbys"); do
    as_owner "$BIN_DIR/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/n$i" -R -X stream -c fast >"$dir/n$i-basebackup.log" 2>&1 ||
      { cat "$dir/n$i-basebackup.log" >&2; exit 1; }
    start_node "$dir" "n$i"
    hosts="$hosts,127.0.0.1:$(port_of "$dir" "n$i")"
  done
  if [ "$mode" = sync ]; then
    # Set now, after createdb and the base backups (their commits would wait for a standby not
    # there yet), in the primary's postgresql.auto.conf, which the standbys do not get.
    as_owner "$BIN_DIR/psql" -h 127.0.0.1 -p "$primary_port" -U postgres -d postgres -qAt \
      -c "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 ($names)'" -c "SELECT pg_reload_conf()" >/dev/null
    # Wait until a standby streams synchronously: before that, commits on the primary wait.
    for _ in $(seq 1 100); do
      n=$(as_owner "$BIN_DIR/psql" -h 127.0.0.1 -p "$primary_port" -U postgres -d postgres -Atc \
        "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')")
      [ "$n" -ge 1 ] && break
      sleep 0.1
    done
  fi
  echo "postgres://postgres@$hosts/coterie_test?target_session_attrs=read-write"
  echo "$dir"
}

# Whether process $1 still runs in directory $2 (its command line names it: pg_ctl starts postgres
# with -D). A pid from a stale postmaster.pid (a node killed before) names whatever process has it
# now: pids wrap within minutes on a busy machine (at 32768 on a small one).
runs_in() {
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2"
}

kill_node() {
  local dir=$1 name=$2 pid
  pid=$(head -n 1 "$dir/$name/postmaster.pid" 2>/dev/null) && runs_in "$pid" "$dir/$name" ||
    { echo "pg-replica-set: $name is not running" >&2; exit 1; }
  # The postmaster and every backend: as a machine that dies, nothing flushes or says goodbye.
  # (Without pkill, the backends notice their postmaster's death and exit on their own.)
  if command -v pkill >/dev/null; then pkill -KILL -P "$pid" 2>/dev/null || true; fi
  kill -KILL "$pid" 2>/dev/null || true
}

promote() {
  ensure_binaries
  as_owner "$BIN_DIR/pg_ctl" -D "$1/$2" -w -t 60 promote >/dev/null
}

stop() {
  local dir=$1 name pid
  [ -f "$dir/nodes" ] || { echo "pg-replica-set: no replica set in $dir" >&2; exit 1; }
  ensure_binaries
  for name in $(awk '{ print $1 }' "$dir/nodes"); do
    # pg_ctl signals the pid in postmaster.pid: a killed node's is stale, and may be another's now.
    pid=$(head -n 1 "$dir/$name/postmaster.pid" 2>/dev/null) || continue
    runs_in "$pid" "$dir/$name" || continue
    as_owner "$BIN_DIR/pg_ctl" -D "$dir/$name" -m immediate -w stop >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
}

case "${1:-}" in
  start) start "${2:-1}" "${3:-sync}" ;;
  kill) kill_node "${2:?usage: $0 kill DIR NODE}" "${3:?usage: $0 kill DIR NODE}" ;;
  promote) promote "${2:?usage: $0 promote DIR NODE}" "${3:?usage: $0 promote DIR NODE}" ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  *)
    echo "usage: $0 start [STANDBYS] [sync|async] | kill DIR NODE | promote DIR NODE | stop DIR" >&2
    exit 2
    ;;
esac
