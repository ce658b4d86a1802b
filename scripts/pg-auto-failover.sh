#!/usr/bin/env bash
# A throwaway pg_auto_failover formation for the store failover tests
# (test/cluster/store-autofailover.test.ts) and bench/failover.ts: a monitor
# and two or three data nodes, on free loopback ports, in one temporary
# directory, run as the postgres user when started as root. The monitor's
# health checks are tuned (docs/store-failover.md says why and what it costs).
#
#   scripts/pg-auto-failover.sh start [NODES]   a monitor and NODES (2 or 3, default 2) data nodes
#       n1, n2, n3 (n1 the first primary) of database coterie_test; waits until one is primary
#       and the others secondaries. Prints the URL `pg_autoctl show uri --formation default`
#       gives on line 1 and the directory on line 2; DIR/nodes lists "NAME PORT" per node.
#   scripts/pg-auto-failover.sh kill DIR NODE     SIGKILL the node's pg_autoctl, its postgres and
#       every backend: as a machine that dies (pg_autoctl alone would restart its postgres)
#   scripts/pg-auto-failover.sh rejoin DIR NODE   run a killed node's pg_autoctl again: it rejoins
#       as a standby of the new primary (pg_rewind when needed)
#   scripts/pg-auto-failover.sh wait DIR N        wait (up to 120 s) until one node is primary and
#       N-1 are secondaries; prints the primary's name
#   scripts/pg-auto-failover.sh state DIR         pg_autoctl show state
#   scripts/pg-auto-failover.sh uri DIR           pg_autoctl show uri --formation default
#   scripts/pg-auto-failover.sh stop DIR          stop everything and remove DIR
#
# Installs Debian's postgresql-15-auto-failover and pg-auto-failover-cli when pg_autoctl is
# missing (as root). Each node's data directory is made by our initdb, so that its
# postgresql.auto.conf (read last, copied to standbys by pg_basebackup) overrides what
# pg_autoctl would pick: shared_buffers at 25 % of RAM, listen_addresses '*'. Trust
# authentication on 127.0.0.1 only; fsync off (the tests kill processes, never the machine)
# unless PG_TEST_FSYNC=on.
set -euo pipefail
shopt -s inherit_errexit

PG_MAJOR=15
BIN_DIR=/usr/lib/postgresql/$PG_MAJOR/bin

ensure_binaries() {
  if ! command -v pg_autoctl >/dev/null || [ ! -x "$BIN_DIR/initdb" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "pg-auto-failover: pg_autoctl not found; install Debian's postgresql-$PG_MAJOR-auto-failover and pg-auto-failover-cli (as root)" >&2
      exit 1
    fi
    echo "pg-auto-failover: installing postgresql-$PG_MAJOR-auto-failover pg-auto-failover-cli" >&2
    apt-get update >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y "postgresql-$PG_MAJOR-auto-failover" pg-auto-failover-cli >&2
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
}

# Runs a command as the data's owner, with pg_autoctl's files (config, state, pid) kept in DIR.
in_dir() {
  local dir=$1
  shift
  local env=(env "PATH=$BIN_DIR:$PATH" "XDG_CONFIG_HOME=$dir/xdg/config" "XDG_DATA_HOME=$dir/xdg/data"
    "XDG_RUNTIME_DIR=$dir/xdg/run" "PG_CONFIG=$BIN_DIR/pg_config" "PGHOST=127.0.0.1")
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "${env[@]}" "$@"
  else
    "${env[@]}" "$@"
  fi
}

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

port_of() {
  awk -v n="$2" '$1 == n { print $2 }' "$1/nodes"
}

# init_pgdata DIR NAME: our initdb, with the settings pg_autoctl must not choose.
init_pgdata() {
  local dir=$1 name=$2
  in_dir "$dir" "$BIN_DIR/initdb" -D "$dir/$name" -U postgres --auth=trust --encoding=UTF8 --locale=C \
    >"$dir/$name-initdb.log" 2>&1 || { cat "$dir/$name-initdb.log" >&2; exit 1; }
  cat >>"$dir/$name/postgresql.auto.conf" <<EOF
listen_addresses = '127.0.0.1'
shared_buffers = '32MB'
max_connections = 200
fsync = ${PG_TEST_FSYNC:-off}
wal_keep_size = '256MB'
EOF
}

# run_node DIR NAME ARGS…: `pg_autoctl ARGS` in the background, detached, logging to DIR/NAME.log.
run_node() {
  local dir=$1 name=$2
  shift 2
  in_dir "$dir" setsid "$@" >>"$dir/$name.log" 2>&1 </dev/null &
}

monitor_url() {
  echo "postgres://autoctl_node@127.0.0.1:$(port_of "$1" monitor)/pg_auto_failover?sslmode=disable"
}

# monitor_sql DIR SQL…: each SQL in its own transaction.
monitor_sql() {
  local dir=$1 sql args=()
  shift
  for sql in "$@"; do args+=(-c "$sql"); done
  in_dir "$dir" "$BIN_DIR/psql" -h 127.0.0.1 -p "$(port_of "$dir" monitor)" -U postgres -d pg_auto_failover -qAt "${args[@]}"
}

# wait_formation DIR N: one primary and N-1 secondaries (the monitor's reported states).
wait_formation() {
  local dir=$1 n=$2 primary="" states
  for _ in $(seq 1 1200); do
    states=$(monitor_sql "$dir" "SELECT nodename, reportedstate, goalstate FROM pgautofailover.node" 2>/dev/null || true)
    primary=$(awk -F'|' '$2 == "primary" && $3 == "primary" { print $1 }' <<<"$states")
    if [ -n "$primary" ] && [ "$(awk -F'|' '$2 == "secondary" && $3 == "secondary"' <<<"$states" | wc -l)" -eq $((n - 1)) ]; then
      echo "$primary"
      return 0
    fi
    if [ "$n" -eq 1 ] && awk -F'|' '$2 == "single" && $3 == "single"' <<<"$states" | grep -q .; then
      awk -F'|' '{ print $1 }' <<<"$states"
      return 0
    fi
    sleep 0.1
  done
  echo "pg-auto-failover: the formation did not settle; states:" >&2
  echo "$states" >&2
  return 1
}

start() {
  local nodes=${1:-2} dir port i
  [[ "$nodes" =~ ^[23]$ ]] || { echo "pg-auto-failover: 2 or 3 data nodes" >&2; exit 2; }
  ensure_binaries
  dir=$(mktemp -d /tmp/coterie-pgaf.XXXXXX)
  # A start that fails half-way leaves nothing running: its caller never learns the directory.
  STARTING=$dir
  trap 'status=$?; [ "$status" -ne 0 ] && [ -n "${STARTING:-}" ] && stop "$STARTING" >/dev/null 2>&1; exit "$status"' EXIT
  chmod 755 "$dir"
  mkdir -p "$dir/xdg/config" "$dir/xdg/data" "$dir/xdg/run"
  chmod 700 "$dir/xdg/run"
  : >"$dir/nodes"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"

  init_pgdata "$dir" monitor
  port=$(free_port)
  echo "monitor $port" >>"$dir/nodes"
  in_dir "$dir" pg_autoctl create monitor --pgdata "$dir/monitor" --pgport "$port" --hostname 127.0.0.1 \
    --auth trust --no-ssl --ssl-mode disable --pgctl "$BIN_DIR/pg_ctl" >>"$dir/monitor.log" 2>&1 ||
    { cat "$dir/monitor.log" >&2; exit 1; }
  # The monitor has no --listen: its pg_autoctl passes `-h *` to postgres unless configured.
  in_dir "$dir" pg_autoctl config set --pgdata "$dir/monitor" postgresql.listen_addresses 127.0.0.1 >/dev/null
  run_node "$dir" monitor pg_autoctl run --pgdata "$dir/monitor"
  for _ in $(seq 1 300); do
    monitor_sql "$dir" "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.1
  done
  # Fail over in seconds rather than about 51 s (docs/store-failover.md: the trade-off).
  monitor_sql "$dir" \
    "ALTER SYSTEM SET pgautofailover.health_check_period = 1000" \
    "ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1" \
    "ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 1000" \
    "ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 2000" \
    "ALTER SYSTEM SET pgautofailover.primary_demote_timeout = 2000" \
    "SELECT pg_reload_conf()" >/dev/null

  for i in $(seq 1 "$nodes"); do
    port=$(free_port)
    echo "n$i $port" >>"$dir/nodes"
    # The first node is made by our initdb; the others are its base backups (pg_autoctl's).
    [ "$i" -eq 1 ] && init_pgdata "$dir" n1
    # pg_autoctl's pg_basebackup asks for a spread checkpoint (minutes after CREATE DATABASE):
    # one now leaves it nothing to write.
    [ "$i" -gt 1 ] && in_dir "$dir" "$BIN_DIR/psql" -h 127.0.0.1 -p "$(port_of "$dir" n1)" -U postgres -d postgres -qAtc CHECKPOINT
    run_node "$dir" "n$i" pg_autoctl create postgres --pgdata "$dir/n$i" --pgport "$port" --name "n$i" \
      --hostname 127.0.0.1 --listen 127.0.0.1 --dbname coterie_test --monitor "$(monitor_url "$dir")" \
      --auth trust --no-ssl --ssl-mode disable --pgctl "$BIN_DIR/pg_ctl" --run
    # One at a time: the first must be primary before a second can copy it.
    wait_formation "$dir" "$i" >/dev/null || { tail -n 30 "$dir"/n*.log >&2; exit 1; }
  done
  in_dir "$dir" pg_autoctl show uri --formation default --pgdata "$dir/monitor"
  echo "$dir"
  STARTING=
}

# Whether process $1 still runs in directory $2 (its command line names it, as pg_autoctl's
# --pgdata and postgres's -D do). A pid from a stale postmaster.pid (a node killed before) names
# whatever process has it now: pids wrap within minutes on a busy machine (at 32768 on a small
# one), and a SIGKILL by a stale pid killed another test's process.
runs_in() {
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2"
}

# The pids of a process and all its descendants.
tree() {
  local pid=$1 child
  echo "$pid"
  for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do tree "$child"; done
}

kill_node() {
  local dir=$1 name=$2 pids=() pid
  # pg_autoctl's supervisor was started with setsid: its session holds the keeper services,
  # postgres and its backends.
  for pid in $(pgrep -f -- "pg_autoctl.*--pgdata $dir/$name( |\$)" || true); do pids+=($(tree "$pid")); done
  pid=$(head -n 1 "$dir/$name/postmaster.pid" 2>/dev/null || true)
  [ -n "$pid" ] && runs_in "$pid" "$dir/$name" && pids+=($(tree "$pid"))
  [ "${#pids[@]}" -gt 0 ] || { echo "pg-auto-failover: $name is not running" >&2; return 1; }
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

rejoin() {
  local dir=$1 name=$2
  run_node "$dir" "$name" pg_autoctl run --pgdata "$dir/$name"
}

stop() {
  local dir=$1 name
  [ -f "$dir/nodes" ] || { echo "pg-auto-failover: no formation in $dir" >&2; exit 1; }
  for name in $(awk '$1 != "monitor" { print $1 }' "$dir/nodes") monitor; do
    kill_node "$dir" "$name" 2>/dev/null || true
  done
  rm -rf "$dir"
}

case "${1:-}" in
  start) start "${2:-2}" ;;
  kill) kill_node "${2:?usage: $0 kill DIR NODE}" "${3:?usage: $0 kill DIR NODE}" ;;
  rejoin) rejoin "${2:?usage: $0 rejoin DIR NODE}" "${3:?usage: $0 rejoin DIR NODE}" ;;
  wait) wait_formation "${2:?usage: $0 wait DIR N}" "${3:?usage: $0 wait DIR N}" ;;
  state) in_dir "${2:?usage: $0 state DIR}" pg_autoctl show state --pgdata "$2/monitor" ;;
  uri) in_dir "${2:?usage: $0 uri DIR}" pg_autoctl show uri --formation default --pgdata "$2/monitor" ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  *)
    echo "usage: $0 start [NODES] | kill DIR NODE | rejoin DIR NODE | wait DIR N | state DIR | uri DIR | stop DIR" >&2
    exit 2
    ;;
esac
