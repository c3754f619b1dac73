#!/usr/bin/env bash
# What an Idempotency-Key costs, in one run on one box (docs/idempotency.md).
#   bash bench/idempotency_bench.sh        (from the project root; SECS=seconds per run, ROUNDS=pairs)
# Needs: wrk, PostgreSQL on 127.0.0.1:5432 (user postgres, trust), .venv with gunicorn.
# 1. Single creates, wrk -t2 -c16 against 2 gunicorn workers: without the header ("plain")
#    and with a unique key per request ("keyed"), ROUNDS adjacent pairs, the order inside a
#    pair alternating; prints median requests/s and the median keyed/plain ratio of the
#    pairs (goal: a keyed create costs at most 1.3x, i.e. keyed/plain >= 0.77).
# 2. One bulk call of 5,000 items, answered with its whole report, with and without a key
#    (fresh dates each time, best of 3): the cost of storing a large answer.
set -u
proj=$(pwd)
venv=$proj/.venv
here=$(cd "$(dirname "$0")" && pwd)
secs=${SECS:-10}
rounds=${ROUNDS:-3}
port=${PORT:-18111}
db=bench_idem_$$
export PYTHONDONTWRITEBYTECODE=1
psql -h 127.0.0.1 -U postgres -qc "create database $db" || exit 1
pidfile=$(mktemp)
cleanup() { [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; sleep 2
  psql -h 127.0.0.1 -U postgres -qc "drop database if exists $db with (force)" >/dev/null 2>&1; rm -f "$pidfile"; }
trap cleanup EXIT

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db LOG_LEVEL=WARNING
export DJANGO_SUPERUSER_EMAIL=bench@example.com DJANGO_SUPERUSER_PASSWORD=bench-Pass-12345
"$venv/bin/python" manage.py migrate -v0 >/dev/null || exit 1
"$venv/bin/python" manage.py createsuperuser --noinput >/dev/null 2>&1
API_RATE_USER= API_RATE_KEY= API_RATE_AUTH= "$venv/bin/gunicorn" -w 2 -b 127.0.0.1:$port exante.wsgi --daemon \
  --pid "$pidfile" --access-logfile /dev/null --error-logfile /dev/null </dev/null >/dev/null 2>&1
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 1; done
base_url=http://127.0.0.1:$port
token=$(curl -s -X POST -H 'Content-Type: application/json' \
  -d "{\"email\":\"$DJANGO_SUPERUSER_EMAIL\",\"password\":\"$DJANGO_SUPERUSER_PASSWORD\"}" \
  "$base_url/api/auth/token" | python3 -c 'import sys,json; print(json.load(sys.stdin)["data"]["access"])')
org=$(curl -s -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"name":"Bench Org"}' \
  "$base_url/api/organizations" | python3 -c 'import sys,json; print(json.load(sys.stdin)["data"]["uid"])')
# One metric per wrk run (and total_ar for the bulk calls), so no run meets another's dates.
for metric in total_ar $(seq -f "run_%g" 0 $((2 * rounds))); do
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"uid\":\"$metric\",\"name\":\"$metric\",\"context_type\":\"ORGANIZATION\",\"value_type\":\"currency\"}" \
    "$base_url/api/metrics"
done
url="$base_url/api/metrics/values/ORGANIZATION/$org"

run() { # name keyed run_number
  TOKEN=$token METRIC=run_$3 BASE_DAY=0 KEYED=$2 wrk -t2 -c16 -d${secs}s -s "$here/post_values_keyed.lua" "$url" \
    2>/dev/null | tail -1 | sed "s/^/$1 /"
}
# A short warm-up, so the first measured run does not pay for cold workers.
TOKEN=$token METRIC=run_0 BASE_DAY=0 KEYED=1 wrk -t2 -c16 -d2s -s "$here/post_values_keyed.lua" "$url" >/dev/null 2>&1
out=$(for round in $(seq "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then run plain 0 $((2 * round - 1)); run keyed 1 $((2 * round))
  else run keyed 1 $((2 * round)); run plain 0 $((2 * round - 1)); fi
done)
echo "$out"
echo "$out" | python3 -c '
import sys, re, statistics
rows, bad = [], 0
for line in sys.stdin:
    kv = dict(re.findall(r"(\w+)=([\d.]+)", line))
    rows.append((line.split()[0], float(kv["rps"])))
    bad += int(kv["errors_non2xx"])
plain = [rps for name, rps in rows if name == "plain"]
keyed = [rps for name, rps in rows if name == "keyed"]
# Each pair ran back to back, so its ratio is the least disturbed by other load on the box.
ratios = [k / p for p, k in zip(plain, keyed)]
ratio = statistics.median(ratios)
print("median rps: plain %.0f, keyed %.0f; median keyed/plain of the %d pairs %.2f "
      "(a keyed create costs %.2fx; goal <= 1.30); non-2xx %d"
      % (statistics.median(plain), statistics.median(keyed), len(ratios), ratio, 1 / ratio, bad))
'

# --- A bulk call of 5,000 items: its report stored as the key's answer, or not.
TOKEN=$token ORG=$org BASE_URL=$base_url "$venv/bin/python" - <<'PY'
import json, os, time, urllib.request
from datetime import date, timedelta

def call(year, key=None):
    # 5,000 distinct days from 1 January of ``year`` (about 14 years).
    items = [{"context_type": "ORGANIZATION", "entity_uid": os.environ["ORG"], "metric_uid": "total_ar",
              "metric_date": (date(year, 1, 1) + timedelta(days=i)).isoformat(), "time_unit": "day",
              "value": i} for i in range(5000)]
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["TOKEN"]}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(os.environ["BASE_URL"] + "/api/metrics/values/bulk",
                                     data=json.dumps({"items": items}).encode(), headers=headers)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
        status = response.status
    return time.perf_counter() - started, status, len(body)

plain, keyed, replayed = [], [], []
for attempt in range(3):
    plain.append(call(1930 + attempt * 15))
    keyed.append(call(1975 + attempt * 15, key=f"bulk-{attempt}"))
    replayed.append(call(1975 + attempt * 15, key=f"bulk-{attempt}"))
best = lambda runs: min(seconds for seconds, _, _ in runs)
statuses = sorted({status for runs in (plain, keyed, replayed) for _, status, _ in runs})
print("bulk of 5,000 items (best of 3): plain %.0f ms, keyed %.0f ms (%.2fx), replay %.0f ms; "
      "stored answer %.0f KiB; statuses %s"
      % (best(plain) * 1000, best(keyed) * 1000, best(keyed) / best(plain), best(replayed) * 1000,
         keyed[0][2] / 1024, statuses))
PY
