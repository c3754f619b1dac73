"""Value history benchmark (not a test): what the history triggers cost, and how fast the
as-of reads are. Prints figures, each against a run without history in the same process
on the same machine.

1. Generates the import CSV of ``bench/ingest_bench.py`` (ROWS rows, default 1,000,000,
   for 500 parties × 2 metrics) and times its plain-``COPY`` floor.
2. ``import_metric_values`` of the file with the history triggers dropped, then (values
   emptied, triggers re-created) with them: the import with history against the one
   without, and against the floor. Target: with history ≥ 80% of the floor's rows/s.
3. Single creates through the API (in process, JWT, one value each), in alternating
   rounds with and without the triggers; the best round of each. Target: with history
   at most 5% slower.
4. With the values and history of step 2 (ROWS each), ``as_of`` list pages of 100 rows
   of one party and ``as_of`` + ``latest=true``, in process: p50 over REQUESTS requests.
   Targets: p50 ≤ 20 ms and ≤ 15 ms.

Own database (default ``exante_history_bench``, dropped and re-created). Run under the
shared lock, so two benchmarks never share the machine:
    flock /tmp/exante-bench.lock .venv/bin/python bench/history_bench.py [--rows 1000000]
"""

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_bench as ib  # the sibling benchmark: setup, data and floor

REQUESTS = 60
CREATE_ROUNDS = 5
CREATES_PER_ROUND = 300


def triggers(sql: str) -> None:
    import psycopg

    with psycopg.connect(ib.DB_URL.replace("postgres://", "postgresql://"), autocommit=True) as c:
        c.execute(sql)


def history_sql() -> tuple[str, str]:
    """(create, drop) of the triggers, as the migrations have them (0008 finds a value's
    versions by date, in its partition)."""
    migration = importlib.import_module("metrics.migrations.0004_value_history_triggers")
    by_date = importlib.import_module("metrics.migrations.0008_value_history_triggers_by_date")
    return migration.POSTGRESQL + by_date._functions(True), migration.POSTGRESQL_DROP


def empty_tables() -> None:
    triggers("TRUNCATE metrics_metricvalue, metrics_metricvaluehistory")


def timed_import(command: list[str]) -> tuple[float, str]:
    ib.checkpoint()
    elapsed, _peak, out = ib.run_measured(command)
    return elapsed, out.strip().splitlines()[-1]


def creates(org_uid: str, rounds: int, per_round: int, create_sql: str, drop_sql: str):
    """Alternating rounds of single creates with and without the triggers → best seconds
    per create of each."""
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import AccessToken

    from entities.models import User

    user = User.objects.get(email=ib.EDITOR[0])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    url = f"/api/metrics/values/ORGANIZATION/{org_uid}"
    day = [0]

    def one_round() -> float:
        started = time.perf_counter()
        for _ in range(per_round):
            day[0] += 1
            metric_date = datetime.fromordinal(693596 + day[0]).date().isoformat()
            response = client.post(
                url,
                {"metric_uid": "bench_org_ar", "metric_date": metric_date, "value": day[0]},
                format="json",
            )
            assert response.status_code == 201, response.content
        return (time.perf_counter() - started) / per_round

    one_round()  # warm-up: imports, caches, first statements
    with_history, without = [], []
    for _ in range(rounds):
        with_history.append(one_round())
        triggers(drop_sql)
        without.append(one_round())
        triggers(create_sql)
    return min(with_history), min(without)


def as_of_p50(party_uid: str, latest: bool) -> float:
    from django.test import Client
    from rest_framework_simplejwt.tokens import AccessToken

    from entities.models import User

    user = User.objects.get(email=ib.EDITOR[0])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    params = {"as_of": datetime.now(UTC).isoformat(), "per_page": 100}
    if latest:
        params["latest"] = "true"
    else:
        params.update(start_date="2023-10-01", end_date="2023-11-19")
    url = f"/api/metrics/values/PARTY/{party_uid}"
    times = []
    for _ in range(REQUESTS + 5):
        started = time.perf_counter()
        response = client.get(url, params)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content
    items = response.json()["data"]["items"]
    print(f"     ({len(items)} rows per page)")
    return statistics.median(times[5:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db-name", default="exante_history_bench")
    args = parser.parse_args()
    # The creates are one user's, far above the per-user rate limit: "" disables it.
    os.environ["API_RATE_USER"] = ""
    ib.configure(args.db_name, ib.PORT)
    rows = args.rows

    ib.setup_database()
    parties, metrics, org_uid = ib.setup_entities()
    create_sql, drop_sql = history_sql()
    workdir = Path(tempfile.mkdtemp(prefix="history-bench-"))
    path = workdir / "values.csv"
    (floor_data,) = ib.generate(path, rows, parties, metrics)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    floor = ib.copy_floor(floor_data, rows)
    del floor_data
    print(f"floor: plain COPY                 {floor:7.1f} s  {rows / floor:10,.0f} rows/s")
    command = ["import_metric_values", str(path), "--no-progress"]

    triggers(drop_sql)
    plain, line = timed_import(command)
    print(f"import, triggers dropped          {plain:7.1f} s  {rows / plain:10,.0f} rows/s")
    print("     ", line)
    empty_tables()
    triggers(create_sql)
    history, line = timed_import(command)
    print(f"import, with history              {history:7.1f} s  {rows / history:10,.0f} rows/s")
    print("     ", line)
    triggers("ANALYZE metrics_metricvalue; ANALYZE metrics_metricvaluehistory")
    path.unlink()
    workdir.rmdir()

    with_history, without = creates(org_uid, CREATE_ROUNDS, CREATES_PER_ROUND, create_sql, drop_sql)
    print(f"single create, with history       {with_history * 1000:7.2f} ms")
    print(f"single create, triggers dropped   {without * 1000:7.2f} ms")

    listed = as_of_p50(parties[0], latest=False)
    print(f"as_of list of 100 rows p50        {listed * 1000:7.2f} ms")
    latest = as_of_p50(parties[0], latest=True)
    print(f"as_of + latest p50                {latest * 1000:7.2f} ms")

    print()
    print(f"import with history / plain COPY:    {floor / history:6.0%}  (target ≥ 80%)")
    print(f"import with history / without:       {plain / history:6.0%}")
    print(f"create throughput with / without:    {without / with_history:6.0%}  (target ≥ 95%)")
    print(f"as_of list p50:                      {listed * 1000:6.1f} ms (target ≤ 20 ms)")
    print(f"as_of + latest p50:                  {latest * 1000:6.1f} ms (target ≤ 15 ms)")


if __name__ == "__main__":
    main()
