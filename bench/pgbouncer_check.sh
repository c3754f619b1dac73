#!/usr/bin/env bash
# The service through PgBouncer in transaction pooling mode (docs/scale.md):
#   make pgbouncer-check      (from the project root; SECS= seconds of load, default 60)
# Needs: pgbouncer (apt-get install pgbouncer), wrk, PostgreSQL on 127.0.0.1:5432 (user
# postgres, trust), .venv with the dev requirements.
# 1. Starts PgBouncer on a free port with its own config in a temporary directory:
#    pool_mode=transaction, 3 server connections per database, more clients than that.
# 2. Runs the values, bulk, history and idempotency tests through it (DB_PGBOUNCER=true).
# 3. Serves the project through it with 6 gunicorn workers and puts wrk -c12 of creates and
#    lists on it for SECS seconds: every answer must be a 2xx.
# Stops everything it started, by pid, and drops its databases.
set -u
proj=$(pwd)
VENV=$proj/.venv
here=$(cd "$(dirname "$0")" && pwd)
. "$here/app_server.sh"
secs=${SECS:-60}
db=exante_pgbouncer_$$
test_db=test_$db
export PYTHONDONTWRITEBYTECODE=1
command -v pgbouncer >/dev/null || { echo "pgbouncer is not installed (apt-get install -y pgbouncer)" >&2; exit 1; }

dir=$(mktemp -d)
port=$(free_port)
cleanup() {
  app_stop
  [ -s "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null && sleep 1
  for name in $db $test_db; do
    psql -h 127.0.0.1 -U postgres -qc "drop database if exists $name with (force)" >/dev/null 2>&1
  done
  rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=5432
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 3
max_client_conn = 200
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
INI
echo '"postgres" ""' >"$dir/userlist.txt"
# PgBouncer refuses to run as root.
if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$dir"
  runuser -u postgres -- pgbouncer -d "$dir/pgbouncer.ini" || exit 1
else
  pgbouncer -d "$dir/pgbouncer.ini" || exit 1
fi
for _ in $(seq 20); do pg_isready -h 127.0.0.1 -p "$port" -q && break; sleep 0.5; done
echo "PgBouncer $(pgbouncer --version | head -1 | cut -d' ' -f2) on port $port, pool_mode=transaction, default_pool_size=3"

export DB_PGBOUNCER=true
psql -h 127.0.0.1 -U postgres -qc "create database $db" || exit 1
export DATABASE_URL=postgres://postgres@127.0.0.1:$port/$db

echo "--- tests through PgBouncer"
# --reuse-db: the test database is dropped below, after PgBouncer let go of its connections.
EXANTE_TEST_DB_NAME=$test_db "$VENV/bin/python" -m pytest -q --reuse-db \
  metrics/tests/api/test_values.py metrics/tests/api/test_bulk.py \
  metrics/tests/api/test_value_history.py exante/tests/test_idempotency.py \
  exante/tests/test_idempotency_race.py metrics/tests/api/test_values_concurrency.py \
  2>&1 | tail -3
tests_rc=${PIPESTATUS[0]}

echo "--- ${secs}s of creates and lists: wrk -t2 -c12, 6 workers, 3 server connections"
"$VENV/bin/python" manage.py migrate -v0 >/dev/null || exit 1
APP_ERROR_LOG=$dir/gunicorn.log app_start "$(free_port)" 6 || exit 1
app_login || exit 1
load=$(TOKEN=$TOKEN METRIC=scale wrk -t2 -c12 --timeout 10s -d"${secs}s" -s "$here/create_list.lua" "$VALUES_URL" | tail -1)
echo "$load"
app_stop
servers=$(psql -h 127.0.0.1 -U postgres -tAc "select count(*) from pg_stat_activity where datname = '$db'")
echo "server connections to $db after the load: $servers"
errors=$(echo "$load" | sed -nE 's/.*errors_non2xx=([0-9]+) errors_socket=([0-9]+).*/\1 \2/p')
requests=$(echo "$load" | sed -nE 's/^requests=([0-9]+).*/\1/p')
if [ "$tests_rc" = 0 ] && [ "$errors" = "0 0" ] && [ "${requests:-0}" -gt 0 ]; then
  echo "PgBouncer check passed"
else
  echo "PgBouncer check FAILED (tests exit $tests_rc; non-2xx and socket errors: ${errors:-?})"
  tail -20 "$dir/pgbouncer.log" "$dir/gunicorn.log" 2>/dev/null
  exit 1
fi
