"""Benchmark of the metric value API on PostgreSQL with 1,000,000 stored values.

    .venv/bin/python bench/values_bench.py [--rows 1000000] [--seconds 5] [--rounds 10]
        [--database exante_values_bench] [--app-port 18101] [--floor-port 18102]

What it does, in one run (about 2–4 minutes; the first run also loads the table):

1. Creates the database (``--database``, default ``exante_values_bench``) if missing,
   migrates it, and loads a realistic history with COPY: 100 organizations × 10 metrics ×
   400 days plus 1,000 parties × 3 metrics × 200 days (1,000,000 rows). A re-run reuses
   the table and removes only what earlier benchmark creates added.
2. Starts two gunicorn servers (2 sync workers each, the same ``exante/gunicorn.conf.py``
   and environment) on 127.0.0.1:18101 (the app) and 127.0.0.1:18102 (the FLOOR: the same
   database and JWT key, no middleware, and ``bench/floor_views.py``, which verifies the
   same JWT and inserts the same row with one ``INSERT … SELECT … ON CONFLICT``).
3. Drives them with wrk (installed with apt-get when missing), using Lua scripts that make
   every create unique, and prints requests/s, p50, p99 and unexpected statuses for:
   creates on the floor and on the app (``--rounds`` adjacent pairs, the order inside a
   pair alternating so neither side always runs second), the default list of 100 rows for
   one organization, and ``latest=true``.
4. Prints the PostgreSQL plans of the two list queries, then stops both servers.

Rate limits are disabled for the run (``API_RATE_USER=""``): with them on, a load test
measures the limiter. Logging is at WARNING in both servers so neither pays for a log line
per request. Targets: create ≥ 70% of the floor with zero unexpected statuses; list p50
≤ 15 ms and ``latest=true`` p50 ≤ 10 ms.
"""

import argparse
import io
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "exante_values_bench"
APP_PORT = 18101
FLOOR_PORT = 18102
SECRET_KEY = "values-bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
#: Creates go to dates from 2100 on: never in the loaded history, so never a 409. Each
#: run gets its own window of days up to the last valid metric date (2199-12-31), so the
#: number of days per run shrinks as ``--rounds`` grows; a run that would overflow its
#: window is reported (see ``main``).
CREATE_EPOCH = date(2100, 1, 1)
LAST_METRIC_DATE = date(2199, 12, 31)
CREATE_THREADS = 2
CREATE_CONNECTIONS = 8

SERVER_ENV = {
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "SECRET_KEY": SECRET_KEY,
    "DEBUG": "false",
    "LOG_LEVEL": "WARNING",
    "GUNICORN_LOG_LEVEL": "warning",
    "GUNICORN_ACCESS_LOG": "",
    "API_RATE_USER": "",
    "API_RATE_KEY": "",
    "JWT_ACCESS_MINUTES": "600",
    "DB_CONN_MAX_AGE": "600",
    "WEB_CONCURRENCY": "2",
    "GUNICORN_MAX_REQUESTS": "0",
}


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def psql(sql: str, database: str = "postgres") -> str:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAc", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("installing wrk (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    return shutil.which("wrk") or "wrk"


def setup_django() -> None:
    os.environ.update(SERVER_ENV)
    os.environ["DJANGO_SETTINGS_MODULE"] = "exante.settings.base"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- Data ------------------------------------------------------------------------------------


def ensure_entities(organizations: int, parties_per_org: int):
    """Bench organizations, parties and one editor; returns (user, orgs, parties)."""
    from entities.models import Membership, Organization, Party, Role, User

    orgs = list(Organization.objects.filter(name__startswith="Bench Org ").order_by("name"))
    if len(orgs) < organizations:
        existing = {org.name for org in orgs}
        Organization.objects.bulk_create(
            Organization(name=f"Bench Org {n:04d}", timezone="America/Los_Angeles")
            for n in range(organizations)
            if f"Bench Org {n:04d}" not in existing
        )
        orgs = list(Organization.objects.filter(name__startswith="Bench Org ").order_by("name"))
    orgs = orgs[:organizations]
    parties = list(Party.objects.filter(organization__in=orgs).order_by("organization_id", "id"))
    if len(parties) < organizations * parties_per_org:
        Party.objects.filter(organization__in=orgs).delete()
        Party.objects.bulk_create(
            Party(organization=org, name=f"Customer {n}", external_ref=f"C-{n}")
            for org in orgs
            for n in range(parties_per_org)
        )
        parties = list(
            Party.objects.filter(organization__in=orgs).order_by("organization_id", "id")
        )
    user = User.objects.filter(email="bench@values.bench").first()
    if user is None:
        user = User.objects.create_user("bench@values.bench", "bench-password-1")
    # The editor belongs to a handful of organizations, as a real user would.
    for org in orgs[:4]:
        Membership.objects.get_or_create(
            user=user, organization=org, defaults={"role": Role.EDITOR}
        )
    return user, orgs, parties


def load_history(target_rows: int, orgs, parties, definitions) -> int:
    """COPY the history in when the table holds fewer than ``target_rows`` values."""
    from django.db import connection
    from uuid6 import uuid7

    from metrics.models import MetricValue

    MetricValue.objects.filter(metric_date__gte=CREATE_EPOCH).delete()
    current = MetricValue.objects.count()
    if current >= target_rows:
        log(f"table already holds {current:,} values; reusing it")
        return current
    log(f"loading {target_rows:,} values with COPY (table had {current:,})")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE metrics_metricvalue")
    org_metrics = [d for d in definitions if d.context_type == "ORGANIZATION"][:10]
    party_metrics = [d for d in definitions if d.context_type == "PARTY"][:3]
    org_days = max(1, round(target_rows * 0.4 / (len(orgs) * len(org_metrics))))
    party_days = max(
        1, round((target_rows - len(orgs) * len(org_metrics) * org_days) / (len(parties) * 3))
    )
    today = datetime.now(UTC).date()
    stamp = datetime.now(UTC).isoformat()
    started = time.perf_counter()

    def rows():
        for context_type, entities, metrics, days in (
            ("ORGANIZATION", orgs, org_metrics, org_days),
            ("PARTY", parties, party_metrics, party_days),
        ):
            for number, entity in enumerate(entities):
                for metric in metrics:
                    level = 1000 + (number * 7919 + metric.pk * 104729) % 500_000
                    for offset in range(days):
                        day = today - timedelta(days=offset)
                        value = level + (offset * 37) % 1000
                        if metric.value_type not in ("count",) and metric.storage_unit == "raw":
                            value = f"{value}.{offset % 100:02d}"
                        yield (
                            f"{uuid7()}\t{metric.pk}\t{context_type}\t{entity.uid}\tday\t"
                            f"{day.isoformat()}\t{value}\tAmerica/Los_Angeles\t"
                            f'{{"source": "bench"}}\t{stamp}\t{stamp}\n'
                        )

    copy_sql = (
        "COPY metrics_metricvalue (uid, metric_id, context_type, entity_uid, time_unit, "
        "metric_date, value, timezone, metadata, created_at, updated_at) FROM STDIN"
    )
    raw = connection.connection if connection.connection else None
    if raw is None:
        connection.ensure_connection()
        raw = connection.connection
    with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
        buffer = io.StringIO()
        for count, line in enumerate(rows(), 1):
            buffer.write(line)
            if count % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    raw.commit()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE metrics_metricvalue")
    total = MetricValue.objects.count()
    log(f"loaded {total:,} values in {time.perf_counter() - started:.1f} s")
    return total


# --- Servers ---------------------------------------------------------------------------------


def _processes():
    """(pid, process group, CPU seconds used) of every process this user can read."""
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        yield int(entry.name), int(fields[2]), (int(fields[11]) + int(fields[12])) / tick


def backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend connected to ``database`` (the
    servers' persistent connections; the database runs on this machine)."""
    pids = psql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()",
        database,
    ).split()
    wanted = {int(pid) for pid in pids}
    return {pid: cpu for pid, _, cpu in _processes() if pid in wanted}


class Server:
    """A gunicorn started (and stopped) by this script, on 127.0.0.1 only."""

    def __init__(self, name: str, port: int, settings: str, logfile: Path):
        self.name, self.port = name, port
        env = {**os.environ, **SERVER_ENV, "DJANGO_SETTINGS_MODULE": settings}
        env.update({"HOST": "127.0.0.1", "PORT": str(port), "PYTHONPATH": str(ROOT)})
        self.log = logfile.open("w")
        self.process = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "-c", "exante/gunicorn.conf.py", "exante.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} server exited; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} server did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU used so far by the server's processes (master and workers:
        its process group)."""
        return sum(cpu for _, group, cpu in _processes() if group == self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


# --- Load ------------------------------------------------------------------------------------

LUA_COMMON = r"""
local threads = {}
statuses = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do agg[tostring(k)] = (agg[tostring(k)] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%s": %d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"socket_errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, table.concat(parts, ", ")))
end
"""

LUA_CREATE = r"""
local counter = 0
local entities = {%(entities)s}
local metrics = {%(metrics)s}
local base = %(base_epoch)d
local prefix = "%(prefix)s"
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"}

function request()
  local n = counter
  counter = counter + 1
  local m = n %% #metrics
  local day = math.floor(n / #metrics)
  local when = os.date("!%%Y-%%m-%%d", base + day * 86400)
  local body = '{"metric_uid":"' .. metrics[m + 1] .. '","metric_date":"' .. when
    .. '","value":' .. tostring(1000 + n %% 50000) .. '}'
  return wrk.format("POST", prefix .. entities[(tid or 0) + 1], headers, body)
end
"""

LUA_GET = r"""
local headers = {["Authorization"] = "Bearer %(token)s"}
function request()
  return wrk.format("GET", "%(path)s", headers)
end
"""


def run_wrk(wrk: str, script: str, port: int, threads: int, connections: int, seconds: int):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(LUA_COMMON + script)
        path = handle.name
    try:
        completed = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                path,
                f"http://127.0.0.1:{port}",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(path)
    line = next(x for x in completed.stdout.splitlines() if x.startswith("WRK_JSON "))
    result = json.loads(line[len("WRK_JSON ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def unexpected(result: dict, expected: int) -> int:
    bad = sum(count for status, count in result["statuses"].items() if int(status) != expected)
    return bad + result["socket_errors"]


def describe(label: str, result: dict, expected: int) -> str:
    cpu = (
        f"   CPU ms/req: server {result['cpu_ms']:.2f}, database {result['db_cpu_ms']:.2f}, "
        f"wrk {result['client_cpu_ms']:.2f}"
        if "cpu_ms" in result
        else ""
    )
    return (
        f"{label:<34} {result['rps']:>8.0f} req/s   p50 {result['p50_us'] / 1000:>6.2f} ms"
        f"   p99 {result['p99_us'] / 1000:>7.2f} ms   unexpected {unexpected(result, expected)}"
        f"   ({result['requests']} requests){cpu}"
    )


def explain(sql_label: str, queryset) -> None:
    plan = queryset.explain(analyze=True)
    print(f"\n--- EXPLAIN ANALYZE: {sql_label}")
    print(plan)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=5, help="length of each create run")
    parser.add_argument("--list-seconds", type=int, default=10)
    # Many short pairs average a shared machine's changing load better than a few long ones.
    parser.add_argument("--rounds", type=int, default=10, help="floor/app create pairs")
    parser.add_argument("--database", default=DB_NAME, help="PostgreSQL database to use")
    parser.add_argument("--app-port", type=int, default=APP_PORT)
    parser.add_argument("--floor-port", type=int, default=FLOOR_PORT)
    args = parser.parse_args()
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.database):
        parser.error("--database must be a plain lowercase identifier")
    SERVER_ENV["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    app_port, floor_port = args.app_port, args.floor_port

    wrk = ensure_wrk()
    # The name is checked above to be a plain identifier: safe to put in the SQL text.
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{args.database}'") != "1":  # noqa: S608
        psql(f"CREATE DATABASE {args.database}")
    setup_django()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        check=True,
        env={**os.environ, **SERVER_ENV, "DJANGO_SETTINGS_MODULE": "exante.settings.base"},
    )

    from django.db import connection
    from rest_framework_simplejwt.tokens import AccessToken

    from metrics.demo import ensure_catalogue
    from metrics.models import MetricDefinition
    from metrics.selectors import metric_values

    definitions = list(ensure_catalogue().values())
    MetricDefinition.objects.filter(pk__in=[d.pk for d in definitions]).update(is_active=True)
    user, orgs, parties = ensure_entities(100, 10)
    total = load_history(args.rows, orgs, parties, definitions)
    token = str(AccessToken.for_user(user))
    org_metrics = [d.uid for d in definitions if d.context_type == "ORGANIZATION"]
    writable = [str(org.uid) for org in orgs[:CREATE_THREADS]]
    target = orgs[0]
    connection.close()

    logs = Path(tempfile.mkdtemp(prefix="values-bench-"))
    app = Server("app", app_port, "exante.settings.base", logs / "app.log")
    floor = Server("floor", floor_port, "bench.floor_settings", logs / "floor.log")
    results: dict[str, list[dict]] = {"floor": [], "app": []}
    try:
        app.wait_ready()
        floor.wait_ready()
        log(f"servers up (logs in {logs}); table holds {total:,} values")
        log(f"load average before measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

        # Two warm-up runs, then two per round.
        days_per_run = (LAST_METRIC_DATE - CREATE_EPOCH).days // (2 + 2 * args.rounds)
        run_capacity = days_per_run * len(org_metrics) * CREATE_THREADS

        def create_script(prefix: str, run: int) -> str:
            base = datetime(2100, 1, 1, tzinfo=UTC) + timedelta(days=run * days_per_run)
            return LUA_CREATE % {
                "entities": ", ".join(f'"{uid}"' for uid in writable),
                "metrics": ", ".join(f'"{uid}"' for uid in org_metrics),
                "base_epoch": int(base.timestamp()),
                "prefix": prefix,
                "token": token,
            }

        # Warm both (imports, connections, caches) before measuring.
        run = 0
        sides = (
            ("floor", floor, "/floor/values/ORGANIZATION/"),
            ("app", app, "/api/metrics/values/ORGANIZATION/"),
        )
        for _, server, prefix in sides:
            run_wrk(wrk, create_script(prefix, run), server.port, 1, 2, 2)
            run += 1
        for round_number in range(args.rounds):
            # Floor first in even rounds, app first in odd ones: a drift in background
            # load then favours neither side of a pair.
            for name, server, prefix in sides if round_number % 2 == 0 else sides[::-1]:
                script = create_script(prefix, run)
                database_before = backend_cpu(args.database)
                server_before = server.cpu_seconds()
                client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
                result = run_wrk(
                    wrk, script, server.port, CREATE_THREADS, CREATE_CONNECTIONS, args.seconds
                )
                client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
                server_after = server.cpu_seconds()
                database_after = backend_cpu(args.database)
                per_request = 1000 / result["requests"]
                result["cpu_ms"] = (server_after - server_before) * per_request
                # A backend that appeared during the run (a worker's first connection)
                # counts whole.
                result["db_cpu_ms"] = per_request * sum(
                    cpu - database_before.get(pid, 0.0) for pid, cpu in database_after.items()
                )
                result["client_cpu_ms"] = per_request * (
                    client_after.ru_utime
                    + client_after.ru_stime
                    - client_before.ru_utime
                    - client_before.ru_stime
                )
                run += 1
                results[name].append(result)
                log(describe(f"create ({name})", result, 201))
                if result["requests"] > run_capacity:
                    log(
                        f"WARNING: {result['requests']} creates overflowed the run's "
                        f"{run_capacity} distinct (metric, day) slots; use fewer --rounds "
                        "or --seconds"
                    )

        list_path = f"/api/metrics/values/ORGANIZATION/{target.uid}"
        latest_path = f"{list_path}?latest=true"
        list_result = run_wrk(
            wrk, LUA_GET % {"token": token, "path": list_path}, app_port, 1, 1, args.list_seconds
        )
        log(describe("list 100 rows (1 connection)", list_result, 200))
        latest_result = run_wrk(
            wrk, LUA_GET % {"token": token, "path": latest_path}, app_port, 1, 1, args.list_seconds
        )
        log(describe("latest=true (1 connection)", latest_result, 200))
        with urllib.request.urlopen(
            urllib.request.Request(
                f"http://127.0.0.1:{app_port}{list_path}",
                headers={"Authorization": f"Bearer {token}"},
            )
        ) as response:
            listed = json.loads(response.read())["data"]
    finally:
        app.stop()
        floor.stop()

    best_floor = max(results["floor"], key=lambda r: r["rps"])
    best_app = max(results["app"], key=lambda r: r["rps"])
    bad_creates = sum(unexpected(r, 201) for r in results["app"] + results["floor"])
    # Each app round runs right after a floor round: their ratio sees the same background
    # load, so the median of the paired ratios is the figure least moved by noise.
    ratios = sorted(
        a["rps"] / f["rps"] for f, a in zip(results["floor"], results["app"], strict=True)
    )
    median_ratio = statistics.median(ratios)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else ratios * 3
    summed = sum(r["requests"] for r in results["app"]) / sum(
        r["requests"] for r in results["floor"]
    )

    def median_cpu(name: str, *parts: str) -> float:
        return statistics.median(sum(r[part] for part in parts) for r in results[name])

    server_cpu = {name: median_cpu(name, "cpu_ms") for name in results}
    total_cpu = {name: median_cpu(name, "cpu_ms", "db_cpu_ms", "client_cpu_ms") for name in results}
    print("\n=== metric values benchmark", f"({total:,} rows in metrics_metricvalue) ===")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(describe("create FLOOR (best round)", best_floor, 201))
    print(describe("create API (best round)", best_app, 201))
    print(
        f"create throughput API/FLOOR: median of {len(ratios)} paired rounds "
        f"{median_ratio:.0%} (interquartile {quartiles[0]:.0%}–{quartiles[2]:.0%}; all "
        f"requests {summed:.0%}; best/best {best_app['rps'] / best_floor['rps']:.0%}; "
        "target ≥ 70%)"
    )
    print(f"  pairs, sorted: {', '.join(f'{r:.0%}' for r in ratios)}")
    # Throughput on a shared machine moves with everyone else's load; the CPU each create
    # costs (server + its PostgreSQL backends + wrk) moves much less. It is not the same
    # figure: a sync worker also waits on each round trip, so the throughput ratio is
    # usually a little higher than the CPU ratio (the API makes one more round trip).
    print(
        f"CPU per create (median of rounds): gunicorn API {server_cpu['app']:.2f} ms vs "
        f"FLOOR {server_cpu['floor']:.2f} ms; gunicorn + PostgreSQL + wrk: API "
        f"{total_cpu['app']:.2f} ms vs FLOOR {total_cpu['floor']:.2f} ms "
        f"(CPU ratio FLOOR/API {total_cpu['floor'] / total_cpu['app']:.0%})"
    )
    print(f"unexpected statuses in creates: {bad_creates} (target 0)")
    print(describe("list, 100 of 910 rows", list_result, 200))
    print(describe("list, latest=true", latest_result, 200))
    print(
        f"list p50 {list_result['p50_us'] / 1000:.2f} ms (target ≤ 15), "
        f"latest p50 {latest_result['p50_us'] / 1000:.2f} ms (target ≤ 10); "
        f"list page: {len(listed['items'])} items of {listed['_meta']['total_items']}"
    )

    setup_connection_queries(target, explain, metric_values)
    return 0


def setup_connection_queries(target, explain_fn, metric_values) -> None:
    """The plans behind the two list requests, against the full table."""
    today = datetime.now(UTC).date()
    base = metric_values().for_entity(context_type="ORGANIZATION", entity_uid=target.uid)
    page = (
        base.with_time_unit("day")
        .in_range(today - timedelta(days=90), today)
        .order_by("-metric_date", "metric__uid", "uid")
        .values("uid", "metric__uid", "value")[:100]
    )
    explain_fn("list page (default window, 100 rows)", page)
    latest = base.latest_per_metric(
        context_type="ORGANIZATION", entity_uid=target.uid, time_unit="day"
    ).order_by("-metric_date", "metric__uid", "uid")
    explain_fn("latest=true", latest)


if __name__ == "__main__":
    sys.exit(main())
