"""Benchmark of series, coverage and freshness reads on PostgreSQL over 1,000,000 values.

    .venv/bin/python bench/series_bench.py [--database exante_series_bench] [--runs 50]
        [--history 1]

Creates the database if missing, migrates it and loads (once; a re-run reuses it):
one organization with 3 ORGANIZATION metrics (sum, last, average) × 1 year of days, and
1,000 active parties × 3 PARTY metrics (last, sum, average) × 1 year, about 1,000,000
values; ``--history 3`` loads three years of the party metrics instead (3× the table).
Each read is answered in-process through the full Django stack (authentication, entity
resolution, envelope rendering) ``--runs`` times after a warm-up, and the p50 and p95 are
printed with their targets.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from values_bench import psql

ROOT = Path(__file__).resolve().parent.parent
END = date(2026, 11, 30)
PARTIES = 1000


def setup_django(database: str) -> None:
    if not psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'"):  # noqa: S608
        psql(f"CREATE DATABASE {database}")
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "exante.settings.base"
    os.environ.setdefault("API_RATE_USER", "")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def load(history_years: int):
    """The bench organization, its parties, a member and the values (loaded once per
    ``history_years``)."""
    from django.db import connection

    from entities.models import Membership, Organization, Party, User
    from metrics.models import MetricDefinition, MetricValue

    org, _ = Organization.objects.get_or_create(
        name="Series Bench", defaults={"timezone": "America/Los_Angeles"}
    )
    if Party.objects.filter(organization=org).count() < PARTIES:
        Party.objects.bulk_create(
            Party(organization=org, name=f"Customer {n:04d}") for n in range(PARTIES)
        )
    user = User.objects.filter(email="bench@series.bench").first()
    if user is None:
        user = User.objects.create_user("bench@series.bench", "bench-password-1")
    Membership.objects.get_or_create(user=user, organization=org, defaults={"role": "viewer"})
    specs = [
        ("bench_flow", "ORGANIZATION", "count", False),
        ("bench_balance", "ORGANIZATION", "currency", True),
        ("bench_rate", "ORGANIZATION", "percentage", False),
        ("bench_party_ar", "PARTY", "currency", True),
        ("bench_party_paid", "PARTY", "currency", False),
        ("bench_party_days", "PARTY", "days", False),
    ]
    definitions = {}
    for uid, context_type, value_type, snapshot in specs:
        definitions[uid], _ = MetricDefinition.objects.get_or_create(
            uid=uid,
            defaults={
                "name": uid,
                "context_type": context_type,
                "value_type": value_type,
                "is_snapshot": snapshot,
            },
        )
    start = END - timedelta(days=365 * history_years - 1)
    marker = f"history={history_years}"
    loaded = MetricValue.objects.filter(metric=definitions["bench_party_ar"]).order_by(
        "metric_date"
    )
    first = loaded.values_list("metric_date", flat=True).first()
    if first == start and MetricValue.objects.count() >= 1_000_000:
        print(f"reusing {MetricValue.objects.count():,} values ({marker})")
        return user, org, definitions
    print(f"loading values ({marker}) …", flush=True)
    started = time.perf_counter()
    org_ids = [definitions[uid].pk for uid in ("bench_flow", "bench_balance", "bench_rate")]
    party_ids = [
        definitions[uid].pk for uid in ("bench_party_ar", "bench_party_paid", "bench_party_days")
    ]
    with connection.cursor() as cursor:
        # Loading millions of rows takes longer than the service's statement timeout.
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("TRUNCATE metrics_metricvalue")
        insert = (
            "INSERT INTO metrics_metricvalue (uid, metric_id, context_type, entity_uid, "
            "time_unit, metric_date, value, timezone, metadata, created_at, updated_at) "
        )
        cursor.execute(
            insert + "SELECT gen_random_uuid(), m, 'ORGANIZATION', %s, 'day', d::date, "
            "round((random() * 1000)::numeric, 2), 'UTC', '{}', now(), now() "
            "FROM unnest(%s::int[]) m, generate_series(%s::date, %s::date, '1 day') d",
            [org.uid, org_ids, END - timedelta(days=364), END],
        )
        cursor.execute(
            insert + "SELECT gen_random_uuid(), m, 'PARTY', p.uid, 'day', d::date, "
            "round((random() * 1000)::numeric, 2), 'UTC', '{}', now(), now() "
            "FROM entities_party p, unnest(%s::int[]) m, "
            "generate_series(%s::date, %s::date, '1 day') d WHERE p.organization_id = %s",
            [party_ids, start, END, org.pk],
        )
        # As autovacuum would after a load: statistics, and the visibility map that lets
        # the reads stay index-only.
        cursor.execute("VACUUM (ANALYZE) metrics_metricvalue")
        cursor.execute("ANALYZE entities_party")
    print(
        f"loaded {MetricValue.objects.count():,} values in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return user, org, definitions


def measure(client, url: str, runs: int) -> tuple[float, float]:
    for _ in range(3):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="exante_series_bench")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--history", type=int, default=1, help="years of party history")
    args = parser.parse_args()
    setup_django(args.database)
    from django.urls import NoReverseMatch, reverse
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    user, org, _ = load(args.history)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    year = f"start_date={END - timedelta(days=364)}&end_date={END}"
    org_path = f"ORGANIZATION/{org.uid}"
    reads = [
        (
            "series: 3 metrics × 1 year → 12 months",
            f"/api/metrics/series/{org_path}?metric_uid=bench_flow,bench_balance,bench_rate"
            f"&bucket=month&{year}",
            30,
        ),
        (
            "series with compare=previous_year",
            f"/api/metrics/series/{org_path}?metric_uid=bench_flow,bench_balance,bench_rate"
            f"&bucket=month&{year}&compare=previous_year",
            45,
        ),
        (
            "series across=parties (1,000 parties × 1 year)",
            f"/api/metrics/series/{org_path}?metric_uid=bench_party_ar&bucket=month"
            f"&{year}&across=parties",
            150,
        ),
    ]
    try:
        reverse("metric-coverage-entity", args=["ORGANIZATION", org.uid])
        reads.append(
            (
                "coverage: 3 metrics × 1 year",
                f"/api/metrics/coverage/{org_path}?metric_uid=bench_flow,bench_balance,"
                f"bench_rate&{year}",
                20,
            )
        )
        reads.append(
            (
                "freshness: 1,000 parties × 3 metrics (first page)",
                f"/api/organizations/{org.uid}/freshness?metric_uid=bench_party_ar,"
                "bench_party_paid,bench_party_days",
                60,
            )
        )
    except NoReverseMatch:
        pass
    print(f"\n{'read':<52} {'p50 ms':>8} {'p95 ms':>8} {'target':>8}")
    for label, url, target in reads:
        p50, p95 = measure(client, url, args.runs)
        verdict = "ok" if p50 <= target else "OVER"
        print(f"{label:<52} {p50:8.1f} {p95:8.1f} {target:8d}  {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
