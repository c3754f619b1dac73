"""Load without loss: a mixed write/read load on gunicorn + PostgreSQL, then an audit of the
table against what every client was told.

    .venv/bin/python bench/load_bench.py [--seconds 30] [--connections 32] [--workers N]

What it does (about a minute):

1. Re-creates the database ``exante_load_bench`` (``--db``), migrates it, and adds one
   organization with 20 parties, an editor (the load runs as a member, not as staff), and
   two metrics (an organization ``count`` and a party ``currency``/``cents`` snapshot).
2. Starts gunicorn with ``exante/gunicorn.conf.py`` on 127.0.0.1:18520 (``--port``), rate
   limits off (a load test would otherwise measure the limiter).
3. Baseline: ``--connections`` clients call ``GET /healthz`` (no database) for a few seconds.
4. Load: the same number of clients, each on its own keep-alive connection, for
   ``--seconds``: creates of random keys (collisions between clients happen and must be
   409s), duplicate creates of keys already answered 201 (must be 409 naming the existing
   uid), patches of values the client created, and lists of one entity's values.
5. Audit, straight from the table: every 201 row is there with the last value the client
   was told was stored; every 409 named a row that exists with the same key; there is no
   row the client was not told about; and no request answered 5xx or went unanswered.

Prints requests/s and latency percentiles per operation, and the load's throughput as a
ratio of the baseline measured in the same run. Exits 1 when the audit fails.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "load-bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF"
EPOCH = date(2020, 1, 1)
#: Dates drawn for creates: small enough that clients collide now and then.
DATE_SPAN = 1500
REQUEST_TIMEOUT_S = 60


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the mixed load")
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers")
    parser.add_argument("--port", type=int, default=18520)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="exante_load_bench")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


# --- Set-up ----------------------------------------------------------------------------


def server_env(args: argparse.Namespace, var_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "EXANTE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="exante.settings.base",
        DATABASE_URL=f"{args.pg_url}/{args.db}",
        SECRET_KEY=SECRET_KEY,
        EXANTE_VAR_DIR=var_dir,
        DEBUG="false",
        LOG_LEVEL="WARNING",
        GUNICORN_LOG_LEVEL="warning",
        API_RATE_USER="",
        API_RATE_KEY="",
        API_RATE_AUTH="",
        HOST="127.0.0.1",
        PORT=str(args.port),
    )
    env.pop("REDIS_URL", None)
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    return env


def recreate_database(args: argparse.Namespace) -> None:
    admin = f"{args.pg_url}/postgres"
    for sql in (f"DROP DATABASE IF EXISTS {args.db} WITH (FORCE)", f"CREATE DATABASE {args.db}"):
        subprocess.run(["psql", admin, "-qXc", sql], check=True, capture_output=True)


def seed() -> dict:
    """Runs in this process with the bench database configured (see ``main``)."""
    from rest_framework_simplejwt.tokens import RefreshToken

    from entities.models import Membership, Organization, Party, User
    from metrics.models import MetricDefinition

    org = Organization.objects.create(name="Load Org", timezone="UTC")
    parties = [Party.objects.create(organization=org, name=f"Party {i}") for i in range(20)]
    editor = User.objects.create_user("load-editor@exante.test", "load-bench-pass-1")
    Membership.objects.create(user=editor, organization=org, role="editor")
    MetricDefinition.objects.create(uid="load_org_count", name="Load count", value_type="count")
    MetricDefinition.objects.create(
        uid="load_party_ar",
        name="Load AR",
        context_type="PARTY",
        value_type="currency",
        storage_unit="cents",
        is_snapshot=True,
    )
    targets = [("ORGANIZATION", str(org.uid), "load_org_count")] + [
        ("PARTY", str(party.uid), "load_party_ar") for party in parties
    ]
    return {"token": str(RefreshToken.for_user(editor).access_token), "targets": targets}


def start_server(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(gunicorn), "-c", "exante/gunicorn.conf.py", "exante.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", int(env["PORT"]), timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    sys.exit(f"gunicorn did not start; see {log_path}:\n{log_path.read_text()[-3000:]}")


# --- The clients ---------------------------------------------------------------------


@dataclass
class Ledger:
    """What the clients were told, merged from every thread after the run."""

    created: dict[str, tuple] = field(default_factory=dict)  # uid -> key
    stored_value: dict[str, Decimal] = field(default_factory=dict)  # uid -> last acked value
    conflicts: list[tuple[str, tuple]] = field(default_factory=list)  # (uid named, key sent)
    statuses: Counter = field(default_factory=Counter)  # (operation, status)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    unanswered: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    """One keep-alive connection and the client's own record of what it was told."""

    def __init__(self, port: int, token: str, ledger: Ledger):
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.ledger = ledger
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)

    def call(self, operation: str, method: str, path: str, body=None):
        payload = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=payload, headers=self.headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S
            )
            self.ledger.unanswered.append(f"{operation} {method} {path}: {exc!r}")
            return None, None
        with self.ledger.lock:
            self.ledger.latencies[operation].append(time.perf_counter() - started)
            self.ledger.statuses[(operation, response.status)] += 1
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None


def key_path(key: tuple) -> str:
    context_type, entity_uid, _metric, _day = key
    return f"/api/metrics/values/{context_type}/{entity_uid}"


def key_body(key: tuple, value: int) -> dict:
    _context, _entity, metric_uid, day = key
    return {"metric_uid": metric_uid, "metric_date": day, "value": value}


def load_worker(client: Client, targets: list, deadline: float, rng: random.Random, ledger):
    mine: list[tuple[str, tuple]] = []  # (uid, key) this client created
    known: list[tuple[str, tuple]] = []  # snapshot of others' creates, for duplicates
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.45 or not mine:
            context, entity, metric = rng.choice(targets)
            day = (EPOCH + timedelta(days=rng.randrange(DATE_SPAN))).isoformat()
            key = (context, entity, metric, day)
            value = rng.randrange(0, 10**9)
            status, body = client.call("create", "POST", key_path(key), key_body(key, value))
            if status == 201:
                uid = body["data"]["uid"]
                mine.append((uid, key))
                with ledger.lock:
                    ledger.created[uid] = key
                    ledger.stored_value[uid] = Decimal(value)
            elif status == 409:
                ledger.conflicts.append(((body.get("data") or {}).get("uid"), key))
            elif status is not None:
                ledger.problems.append(f"create {key}: {status} {body}")
        elif roll < 0.60:
            # A duplicate of a key some client was told was created.
            if not known or rng.random() < 0.1:
                with ledger.lock:
                    known = list(ledger.created.items())[-500:]
            uid, key = rng.choice(known) if known else rng.choice(mine)
            status, body = client.call("duplicate", "POST", key_path(key), key_body(key, 1))
            if status == 409:
                ledger.conflicts.append(((body.get("data") or {}).get("uid"), key))
                if (body.get("data") or {}).get("uid") != uid:
                    ledger.problems.append(f"duplicate of {uid} named {body.get('data')}")
            elif status is not None:
                ledger.problems.append(f"duplicate {key}: expected 409, got {status} {body}")
        elif roll < 0.80:
            # Only the creating client patches a value, so "last acknowledged" is exact.
            uid, _key = rng.choice(mine)
            value = rng.randrange(0, 10**9)
            status, body = client.call(
                "patch", "PATCH", f"/api/metrics/values/{uid}", {"value": value}
            )
            if status == 200:
                with ledger.lock:
                    ledger.stored_value[uid] = Decimal(value)
            elif status is not None:
                ledger.problems.append(f"patch {uid}: {status} {body}")
        else:
            context, entity, _metric = rng.choice(targets)
            status, body = client.call(
                "list",
                "GET",
                f"/api/metrics/values/{context}/{entity}"
                f"?start_date={EPOCH.isoformat()}&end_date=2030-12-31&per_page=50",
            )
            if status != 200 and status is not None:
                ledger.problems.append(f"list {entity}: {status} {body}")


def baseline_worker(client: Client, deadline: float) -> None:
    while time.monotonic() < deadline:
        client.call("healthz", "GET", "/healthz")


def run_clients(count: int, target, *args) -> float:
    threads = [threading.Thread(target=target, args=args[i]) for i in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


# --- Audit and report -------------------------------------------------------------------


def audit(ledger: Ledger) -> list[str]:
    """Compare the table with the ledger; every mismatch is a line in the answer."""
    from metrics.models import MetricValue

    failures: list[str] = []
    rows = {
        str(uid): (context, str(entity), metric, day.isoformat(), value)
        for uid, context, entity, metric, day, value in MetricValue.objects.values_list(
            "uid", "context_type", "entity_uid", "metric__uid", "metric_date", "value"
        )
    }
    for uid, key in ledger.created.items():
        row = rows.get(uid)
        if row is None:
            failures.append(f"201 {uid} {key}: no such row")
        elif row[:4] != key:
            failures.append(f"201 {uid}: key {row[:4]} != sent {key}")
        elif row[4] != ledger.stored_value[uid]:
            failures.append(
                f"{uid}: stored {row[4]} != last acknowledged {ledger.stored_value[uid]}"
            )
    for uid, key in ledger.conflicts:
        row = rows.get(uid) if uid else None
        if row is None:
            failures.append(f"409 for {key} named {uid}: no such row")
        elif row[:4] != key:
            failures.append(f"409 for {key} named {uid} whose key is {row[:4]}")
    for uid in sorted(set(rows) - set(ledger.created)):
        failures.append(f"row {uid} {rows[uid][:4]}: no client was told it was created")
    server_errors = sum(n for (_op, status), n in ledger.statuses.items() if status >= 500)
    if server_errors:
        failures.append(f"{server_errors} responses were 5xx")
    failures += [f"unanswered: {line}" for line in ledger.unanswered[:20]]
    failures += ledger.problems[:20]
    return failures


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(ledger: Ledger, baseline: Ledger, load_s: float, baseline_s: float) -> None:
    base_total = sum(baseline.statuses.values())
    base_rps = base_total / baseline_s
    load_total = sum(ledger.statuses.values())
    load_rps = load_total / load_s
    print(f"\nbaseline GET /healthz: {base_total} requests, {base_rps:.0f} req/s")
    print(f"mixed load:            {load_total} requests, {load_rps:.0f} req/s")
    print(f"load / baseline throughput: {load_rps / base_rps:.2f}")
    print(
        f"\n{'operation':<10} {'count':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    )
    for operation in ("create", "duplicate", "patch", "list"):
        lat = ledger.latencies.get(operation, [])
        print(
            f"{operation:<10} {len(lat):>7} {len(lat) / load_s:>7.0f} "
            f"{percentile(lat, 50) * 1000:>8.1f} {percentile(lat, 95) * 1000:>8.1f} "
            f"{percentile(lat, 99) * 1000:>8.1f}"
        )
    statuses = ", ".join(
        f"{op} {status}: {n}" for (op, status), n in sorted(ledger.statuses.items())
    )
    print(f"\nstatuses: {statuses}")
    print(
        f"rows created: {len(ledger.created)}, 409s checked: {len(ledger.conflicts)}, "
        f"unanswered: {len(ledger.unanswered)}"
    )


def main() -> int:
    args = parse_args()
    var_dir = tempfile.mkdtemp(prefix="exante-load-bench-")
    env = server_env(args, var_dir)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SECRET_KEY")})
    os.environ["EXANTE_VAR_DIR"] = var_dir
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import django

    print(f"database {args.db}: re-creating and migrating")
    recreate_database(args)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env=env, check=True
    )
    django.setup()
    fixtures = seed()
    log_path = Path(var_dir) / "gunicorn.log"
    server = start_server(env, log_path)
    try:
        rng = random.Random(args.seed)
        print(f"gunicorn on 127.0.0.1:{args.port}; {args.connections} connections")
        baseline = Ledger()
        deadline = time.monotonic() + args.baseline_seconds
        baseline_s = run_clients(
            args.connections,
            baseline_worker,
            *[
                (Client(args.port, fixtures["token"], baseline), deadline)
                for _ in range(args.connections)
            ],
        )
        ledger = Ledger()
        deadline = time.monotonic() + args.seconds
        load_s = run_clients(
            args.connections,
            load_worker,
            *[
                (
                    Client(args.port, fixtures["token"], ledger),
                    fixtures["targets"],
                    deadline,
                    random.Random(rng.random()),
                    ledger,
                )
                for _ in range(args.connections)
            ],
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    report(ledger, baseline, load_s, baseline_s)
    failures = audit(ledger)
    shutil.rmtree(var_dir, ignore_errors=True)
    if failures:
        print(f"\nAUDIT FAILED ({len(failures)}):")
        for line in failures[:50]:
            print(f"  {line}")
        return 1
    print("\naudit: every 201 row present with its last acknowledged value, every 409 named")
    print("an existing row with the same key, no unreported row, no 5xx, nothing unanswered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
