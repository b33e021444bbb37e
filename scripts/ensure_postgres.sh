#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on $PGHOST:$PGPORT (default 127.0.0.1:5432) and holds
# the database the dev environment loads into (`zoho`, or the first argument).
# Order: one already answering; a Debian cluster that is only stopped; a new cluster in
# ./.pgdata; and, when no server binaries exist at all, Debian's postgresql package first.
set -euo pipefail

host="${PGHOST:-127.0.0.1}"
port="${PGPORT:-5432}"
user="${PGUSER:-postgres}"
here="$(cd "$(dirname "$0")/.." && pwd)"
database="${1:-zoho}"

answers() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }
say() { echo "postgres: $*" >&2; }

wait_ready() {
  for _ in $(seq 1 60); do answers && return 0; sleep 0.5; done
  return 1
}

install_server() {
  command -v apt-get >/dev/null || { say "no server binaries and no apt-get"; exit 1; }
  say "installing Debian's postgresql package"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

start_debian_cluster() {
  command -v pg_ctlcluster >/dev/null || return 1
  local version
  for version in $(ls /etc/postgresql 2>/dev/null); do
    say "starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    wait_ready && return 0
  done
  return 1
}

start_private_cluster() {
  local bindir data="$here/.pgdata"
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [ -n "$bindir" ] || return 1
  local run=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home "$data" postgres
    run=(runuser -u postgres --)
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a cluster in $data"
    mkdir -p "$data" && chown -R "$(stat -c %u "$here")" "$data" 2>/dev/null || true
    [ "$(id -u)" = 0 ] && chown -R postgres "$data"
    "${run[@]}" "$bindir/initdb" -D "$data" -U "$user" --auth=trust >/dev/null
  fi
  "${run[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" \
    -o "-c listen_addresses=$host -c port=$port -c unix_socket_directories=$data" start >/dev/null
  wait_ready
}

ensure_database() {
  local psql found
  psql="$(command -v psql || ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n1)"
  [ -n "$psql" ] || { say "no psql to create the database $database with"; exit 1; }
  local ask=("$psql" -h "$host" -p "$port" -U "$user" -d postgres -qAt -v ON_ERROR_STOP=1)
  found="$("${ask[@]}" -v db="$database" <<< "SELECT 1 FROM pg_database WHERE datname = :'db'")"
  [ -n "$found" ] && return 0
  "${ask[@]}" -v db="$database" <<< 'CREATE DATABASE :"db"'
  say "created the database $database"
}

if ! answers; then
  command -v pg_isready >/dev/null || install_server
  start_debian_cluster || start_private_cluster || { install_server; start_debian_cluster; } \
    || { say "could not start a server on $host:$port"; exit 1; }
  say "ready on $host:$port"
fi
ensure_database
