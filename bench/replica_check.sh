#!/usr/bin/env bash
# The service with a real streaming replica on this machine (docs/scale.md):
#   make replica-check        (from the project root; TRIES= read-after-write tries, default 1000)
# Needs: PostgreSQL 15 on 127.0.0.1:5432 (user postgres, trust, wal_level=replica), Redis on
# 127.0.0.1:6379 (the pins are shared by the workers), .venv with gunicorn.
# 1. A standby: pg_basebackup -R of the whole cluster into a temporary directory, started on a
#    free port with pg_ctl as the postgres user. A "host replication" line is added to the
#    cluster's pg_hba.conf for the run when none is there, and removed at the end.
# 2. The app on 2 workers with DATABASE_REPLICA_URL: TRIES times, create a value and list it at
#    once (and read it by uid): it is there every time.
# 3. Reads of a user with no recent write reach the standby: its pg_stat_database counters
#    (xact_commit, tup_returned) for the database grow by at least one transaction a read.
# 4. The standby pauses its replay: a write it has not replayed is listed (from the primary)
#    once the replica is REPLICA_MAX_LAG_SECONDS behind, and /readyz says "lagging".
# 5. The standby stops: reads fall back to the primary (every answer 200) and /readyz says
#    "replica": "unreachable" with a 200.
# Stops everything it started, by pid, and removes the standby's directory.
set -u
proj=$(pwd)
VENV=$proj/.venv
here=$(cd "$(dirname "$0")" && pwd)
. "$here/app_server.sh"
tries=${TRIES:-1000}
reads=${READS:-300}
db=exante_replica_$$
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
hba=$(psql -h 127.0.0.1 -U postgres -tAc "show hba_file")
marker="# exante replica-check $$"
export PYTHONDONTWRITEBYTECODE=1 LOG_LEVEL=WARNING
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

dir=$(mktemp -d)
rport=$(free_port)
aport=$(free_port)
cleanup() {
  app_stop
  [ -f "$dir/data/postmaster.pid" ] && as_postgres "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
  if grep -q "$marker" "$hba" 2>/dev/null; then
    sed -i "/$marker/d" "$hba"
    psql -h 127.0.0.1 -U postgres -qtAc "select pg_reload_conf()" >/dev/null
  fi
  psql -h 127.0.0.1 -U postgres -qc "drop database if exists $db with (force)" >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "replica check FAILED: $*"; psql -h 127.0.0.1 -U postgres -tAc "select pg_current_wal_lsn(), (select replay_lsn from pg_stat_replication limit 1), (select replay_lag from pg_stat_replication limit 1)"; tail -5 "$dir/standby.log" 2>/dev/null; exit 1; }

psql -h 127.0.0.1 -U postgres -qc "create database $db" || exit 1
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db
"$VENV/bin/python" manage.py migrate -v0 >/dev/null || exit 1

echo "--- standby: pg_basebackup -R into $dir/data, port $rport"
if ! grep -Eq '^host\s+replication\s+(all|postgres)\s+127\.0\.0\.1/32' "$hba"; then
  echo "host replication postgres 127.0.0.1/32 trust $marker" >>"$hba"
  psql -h 127.0.0.1 -U postgres -qtAc "select pg_reload_conf()" >/dev/null
fi
chown postgres "$dir" 2>/dev/null
as_postgres "$pgbin/pg_basebackup" -h 127.0.0.1 -U postgres -D "$dir/data" -R -X stream -c fast \
  || fail "pg_basebackup"
# The Debian cluster keeps its configuration outside the data directory: the standby gets its own.
cat >"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $rport
unix_socket_directories = '$dir'
hot_standby = on
shared_buffers = 64MB
CONF
# A hot standby needs at least the primary's values of these.
psql -h 127.0.0.1 -U postgres -tAc "select name || ' = ' || setting from pg_settings where name in
  ('max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions',
   'max_locks_per_transaction')" >>"$dir/data/postgresql.conf"
printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$dir/data/pg_hba.conf"
chown -R postgres "$dir" 2>/dev/null
as_postgres "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/standby.log" -w start >/dev/null || fail "the standby did not start"
[ "$(psql -h 127.0.0.1 -p "$rport" -U postgres -tAc 'select pg_is_in_recovery()')" = t ] || fail "not a standby"
echo "standby in recovery, streaming: $(psql -h 127.0.0.1 -U postgres -tAc "select state from pg_stat_replication limit 1")"

export DATABASE_REPLICA_URL=postgres://postgres@127.0.0.1:$rport/$db
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0} REPLICA_PIN_SECONDS=2 REPLICA_CHECK_SECONDS=1 \
  REPLICA_MAX_LAG_SECONDS=3
APP_ERROR_LOG=$dir/gunicorn.log app_start "$aport" 2 || fail "gunicorn"
app_login || fail "set-up through the API"

echo "--- read-your-writes: $tries times create, then list and read at once"
TOKEN=$TOKEN VALUES_URL=$VALUES_URL BASE_URL=$BASE_URL TRIES=$tries "$VENV/bin/python" - <<'PY' || fail "read-your-writes"
import json, os, sys, urllib.request
from datetime import date, timedelta

token, url, base = os.environ["TOKEN"], os.environ["VALUES_URL"], os.environ["BASE_URL"]

def call(method, address, body=None):
    request = urllib.request.Request(address, method=method, data=body and json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["data"]

missing = 0
tries = int(os.environ["TRIES"])
for n in range(tries):
    day = (date(2000, 1, 1) + timedelta(days=n)).isoformat()
    created = call("POST", url, {"metric_uid": "scale", "metric_date": day, "value": n})
    listed = call("GET", f"{url}?start_date={day}&end_date={day}")["items"]
    read = call("GET", f"{base}/api/metrics/values/{created['uid']}")
    if [item["uid"] for item in listed] != [created["uid"]] or read["value"] != n:
        missing += 1
print(f"{tries} tries, {missing} missed a write just made")
sys.exit(1 if missing else 0)
PY

counters() {
  psql -h 127.0.0.1 -p "$rport" -U postgres -tAc \
    "select xact_commit, tup_returned from pg_stat_database where datname = '$db'"
}
# A backend reports its counters when it ends; the app's connections end with the app.
app_stop
sleep 2  # the backends' exit, and past the pin of the last write
# The standby replays everything written so far (other work on the cluster may hold it back).
target=$(psql -h 127.0.0.1 -U postgres -tAc "select pg_current_wal_lsn()")
for _ in $(seq 120); do
  [ "$(psql -h 127.0.0.1 -p "$rport" -U postgres -tAc "select pg_last_wal_replay_lsn() >= '$target'")" = t ] && break
  sleep 1
done
before=$(counters)
APP_ERROR_LOG=$dir/gunicorn.log app_start "$aport" 2 || fail "gunicorn"
echo "--- $reads lists of a user whose pin expired, on the standby"
for _ in $(seq "$reads"); do
  code=$(curl -s -o "$dir/last.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    "$VALUES_URL?start_date=2000-01-01&end_date=2000-12-31")
  [ "$code" = 200 ] || fail "a list on the replica answered $code: $(cat "$dir/last.json")"
done
app_stop
sleep 2
after=$(counters)
echo "standby pg_stat_database (xact_commit|tup_returned): before $before, after $after"
grown=$(( ${after%%|*} - ${before%%|*} ))
[ "$grown" -ge "$reads" ] || fail "the standby ran $grown transactions for $reads reads"

echo "--- the standby pauses its replay: a lagging replica is not used"
APP_ERROR_LOG=$dir/gunicorn.log app_start "$aport" 2 || fail "gunicorn"
psql -h 127.0.0.1 -p "$rport" -U postgres -qtAc "select pg_wal_replay_pause()" >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"metric_uid":"scale","metric_date":"1999-12-31","value":1}' "$VALUES_URL")
[ "$code" = 201 ] || fail "a create answered $code"
sleep 6  # past the pin, and past REPLICA_MAX_LAG_SECONDS behind
listed=$(curl -s -H "Authorization: Bearer $TOKEN" "$VALUES_URL?start_date=1999-12-31&end_date=1999-12-31" \
  | python3 -c 'import sys,json; print(len(json.load(sys.stdin)["data"]["items"]))')
ready=$(curl -s "$BASE_URL/readyz")
echo "a write the paused standby has not replayed, listed after its pin: $listed item(s); /readyz: $ready"
[ "$listed" = 1 ] || fail "the list missed the write"
echo "$ready" | grep -q '"replica": "lagging"' || fail "/readyz does not report the lag"
psql -h 127.0.0.1 -p "$rport" -U postgres -qtAc "select pg_wal_replay_resume()" >/dev/null

echo "--- the standby stops: reads fall back to the primary"
curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "$VALUES_URL" || fail "a list before the stop"
as_postgres "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || fail "stopping the standby"
bad=0
for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$VALUES_URL")
  [ "$code" = 200 ] || bad=$((bad + 1))
done
ready=$(curl -s "$BASE_URL/readyz")
echo "100 lists with the standby stopped: $bad not 200; /readyz: $ready"
[ "$bad" = 0 ] || fail "$bad lists failed without the standby"
echo "$ready" | grep -q '"replica": "unreachable"' || fail "/readyz does not report the stopped replica"
echo "replica check passed"
