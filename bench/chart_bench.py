"""Benchmark of the admin's chart page on PostgreSQL with 1,000,000 values in the table.

    .venv/bin/python bench/chart_bench.py [--database exante_chart_bench] [--runs 30]

Creates the database if missing, migrates it and loads (once; a re-run reuses it): one
organization's ``chart_balance`` (cents, "last") × 5 years of days, and 547 parties × one
PARTY metric × 5 years of days, about 1,000,000 values. The chart page of the
organization's 5 years is rendered in-process through the whole Django stack (session,
admin, template) as a logged-in superuser, ``--runs`` times after a warm-up; p50 and p95
are printed with the target, and the number of statements that read the values table.
"""

import argparse
import sys
import time
from datetime import date, timedelta

from series_bench import measure, setup_django

END = date(2026, 11, 30)
START = END - timedelta(days=5 * 365)
PARTIES = 547
TARGET_MS = 150


def load():
    from django.db import connection

    from entities.models import Organization, Party, User
    from metrics.models import MetricDefinition, MetricValue

    org, _ = Organization.objects.get_or_create(name="Chart Bench", defaults={"timezone": "UTC"})
    existing = Party.objects.filter(organization=org).count()
    Party.objects.bulk_create(
        Party(organization=org, name=f"Customer {n:04d}") for n in range(existing, PARTIES)
    )
    user = User.objects.filter(email="root@chart.bench").first()
    if user is None:
        user = User.objects.create_superuser("root@chart.bench", "bench-password-1")
    balance, _ = MetricDefinition.objects.get_or_create(
        uid="chart_balance",
        defaults={
            "name": "Chart balance",
            "context_type": "ORGANIZATION",
            "value_type": "currency",
            "storage_unit": "cents",
            "is_snapshot": True,
        },
    )
    party_metric, _ = MetricDefinition.objects.get_or_create(
        uid="chart_party_balance",
        defaults={"name": "Chart party balance", "context_type": "PARTY", "value_type": "count"},
    )
    if MetricValue.objects.count() >= 1_000_000:
        print(f"reusing {MetricValue.objects.count():,} values")
        return user, org
    print("loading values …", flush=True)
    started = time.perf_counter()
    insert = (
        "INSERT INTO metrics_metricvalue (uid, metric_id, context_type, entity_uid, "
        "time_unit, metric_date, value, timezone, metadata, created_at, updated_at) "
    )
    with connection.cursor() as cursor:
        # Loading a million rows takes longer than the service's statement timeout.
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("TRUNCATE metrics_metricvalue")
        cursor.execute(
            insert + "SELECT gen_random_uuid(), %s, 'ORGANIZATION', %s, 'day', d::date, "
            "round((random() * 100000000)::numeric), 'UTC', '{}', now(), now() "
            "FROM generate_series(%s::date, %s::date, '1 day') d",
            [balance.pk, org.uid, START, END],
        )
        cursor.execute(
            insert + "SELECT gen_random_uuid(), %s, 'PARTY', p.uid, 'day', d::date, "
            "round((random() * 1000)::numeric), 'UTC', '{}', now(), now() "
            "FROM entities_party p, generate_series(%s::date, %s::date, '1 day') d "
            "WHERE p.organization_id = %s",
            [party_metric.pk, START, END, org.pk],
        )
        # As autovacuum would after a load: statistics and the visibility map.
        cursor.execute("VACUUM (ANALYZE) metrics_metricvalue")
    print(
        f"loaded {MetricValue.objects.count():,} values in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return user, org


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="exante_chart_bench")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    setup_django(args.database)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from metrics.admin_charts import chart_url

    user, org = load()
    client = Client()
    client.force_login(user)
    base = chart_url(context_type="ORGANIZATION", entity_uid=org.uid, metric_uid="chart_balance")
    five_years = f"start={START}&end={END}"
    pages = [
        ("5 years by week (261 points)", f"{base}?bucket=week&{five_years}"),
        ("5 years by month (60 points)", f"{base}?bucket=month&{five_years}"),
        ("5 years by month, previous year", f"{base}?bucket=month&{five_years}&previous_year=on"),
        ("the last 1,000 days by day", f"{base}?bucket=day&start={END - timedelta(999)}&end={END}"),
    ]
    print(f"\n{'chart page':<40} {'p50 ms':>8} {'p95 ms':>8} {'target':>8} {'reads':>6}")
    for label, url in pages:
        p50, p95 = measure(client, url, args.runs)
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        reads = sum("metrics_metricvalue" in query["sql"] for query in queries)
        verdict = "ok" if p50 <= TARGET_MS else "OVER"
        print(f"{label:<40} {p50:8.1f} {p95:8.1f} {TARGET_MS:8d} {reads:6d}  {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
