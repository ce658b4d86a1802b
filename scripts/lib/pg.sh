# Sourced by scripts/pg-test-server.sh and scripts/pg-replica-set.sh: finding (or, as root on
# Debian, installing) PostgreSQL, and running it as the `postgres` user when started as root
# (PostgreSQL refuses to run as root). The caller sets PG_TOOL, the name its messages start with.

# Debian's versioned directory first (PATH may hold a partial set of the tools).
find_bin_dir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")"; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/createdb" ] && [ -x "$d/pg_basebackup" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

# Sets BIN_DIR; as root, installs Debian's postgresql when the binaries are missing.
ensure_binaries() {
  if ! BIN_DIR=$(find_bin_dir); then
    if [ "$(id -u)" -ne 0 ]; then
      echo "$PG_TOOL: PostgreSQL binaries not found; install Debian's postgresql (as root: apt-get install -y postgresql)" >&2
      exit 1
    fi
    echo "$PG_TOOL: installing postgresql" >&2
    apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
    BIN_DIR=$(find_bin_dir) || { echo "$PG_TOOL: postgresql installed but initdb not found" >&2; exit 1; }
  fi
}

# Runs a PostgreSQL binary as the server's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# make_server_dir PREFIX: a fresh directory under /tmp the server's owner can write (its path on stdout).
make_server_dir() {
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  local dir
  dir=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  echo "$dir"
}

# init_data DIR DATA: initdb of DIR/DATA (trust on loopback), its log in DIR/initdb.log.
init_data() {
  as_owner "$BIN_DIR/initdb" -D "$1/$2" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$1/initdb.log" 2>&1 ||
    { cat "$1/initdb.log" >&2; exit 1; }
}
