#!/usr/bin/env bash
# A local PostgreSQL server for the sweep tests (designer sweep --storage postgresql://...).
# Installs the Debian package `postgresql` when missing (as root, else with sudo), starts the
# cluster, creates a user and a database, and prints the URL on stdout (the only thing printed
# there), for:
#   export DESIGNER_TEST_POSTGRES_URL="$(bash scripts/start-postgres.sh)"
# Fails (exit 1, a note on stderr) when it cannot; the PostgreSQL tests then skip with a reason.
# Environment: PG_USER, PG_PASSWORD, PG_DB, PG_PORT change the defaults below.
set -euo pipefail
user="${PG_USER:-designer}"
password="${PG_PASSWORD:-designer}"
db="${PG_DB:-designer_test}"
port="${PG_PORT:-5432}"

note() { echo "start-postgres: $*" >&2; }
[ "$(uname -s)" = Linux ] || { note "Linux only"; exit 1; }
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  note "not root and no sudo: cannot install or start PostgreSQL"; exit 1; fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || { note "no apt-get to install postgresql"; exit 1; }
  note "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq postgresql >/dev/null
fi

version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
[ -n "$version" ] || { note "no PostgreSQL server found under /usr/lib/postgresql"; exit 1; }
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | grep -qx "$version main"; then
  $SUDO pg_createcluster "$version" main --port "$port" >&2
fi
cluster_port="$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')"
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  $SUDO pg_ctlcluster "$version" main start >&2  # it may say "Removed stale pid file." on stdout
fi

as_postgres() { $SUDO runuser -u postgres -- "$@"; }
[ "$(id -u)" = 0 ] || as_postgres() { sudo -u postgres "$@"; }
psql_admin() { as_postgres psql -p "$cluster_port" -v ON_ERROR_STOP=1 -qtAc "$1"; }

for _ in $(seq 1 30); do  # the server accepts connections a moment after it starts
  psql_admin "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.5
done
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
  psql_admin "CREATE ROLE \"$user\" LOGIN PASSWORD '$password'" >/dev/null
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
  psql_admin "CREATE DATABASE \"$db\" OWNER \"$user\"" >/dev/null
fi
echo "postgresql://$user:$password@localhost:$cluster_port/$db"
