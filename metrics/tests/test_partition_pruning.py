"""The values and history tables are partitioned by year on PostgreSQL: the statements the
API runs read only the partitions of the years they ask for, through the partitions'
indexes. Each test captures the SQL of a real request and reads its plan."""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metrics.models import MetricValue

from .plans import index_scans, plan_of, scanned

pytestmark = pytest.mark.postgres

VALUES = MetricValue._meta.db_table
UNIQUE_INDEX = "metricvalue_entity_metric_unit_date_uniq"
YEARS = (2024, 2025, 2026)


@pytest.fixture
def three_years(postgres_only, organization, total_ar):
    """A value on the first of each month of 2024, 2025 and 2026 for the organization and
    for 60 other entities (so the metric's own index is no shortcut to one entity), with
    statistics."""
    entities = [organization.uid, *(uuid.uuid4() for _ in range(60))]
    MetricValue.objects.bulk_create(
        MetricValue(
            metric=total_ar,
            context_type="ORGANIZATION",
            entity_uid=entity,
            metric_date=date(year, month, 1),
            value=Decimal(year * 100 + month),
        )
        for entity in entities
        for year in YEARS
        for month in range(1, 13)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {VALUES}")
        cursor.execute("ANALYZE metrics_metricvaluehistory")
    return organization


def captured_sql(client, path: str, params: dict, table: str) -> str:
    """The one statement of the request that reads ``table``."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, params)
    assert response.status_code == 200, response.content
    [sql] = [q["sql"] for q in queries.captured_queries if f'FROM "{table}"' in q["sql"]]
    return sql


def read_by(plan: str, index: str) -> set[str]:
    """The partitions whose copy of ``index`` the plan scans."""
    return {part for part, _ in index_scans(plan, index)}


def test_list_of_a_date_range_reads_one_years_partition_by_the_unique_index(
    three_years, viewer_client
):
    sql = captured_sql(
        viewer_client,
        f"/api/metrics/values/ORGANIZATION/{three_years.uid}",
        {"start_date": "2025-02-01", "end_date": "2025-06-30"},
        VALUES,
    )
    plan = plan_of(sql)
    assert scanned(plan, VALUES) == {"y2025"}, plan
    assert read_by(plan, UNIQUE_INDEX) == {"y2025"}, plan


def test_series_over_two_years_reads_those_two_partitions_by_the_unique_index(
    three_years, viewer_client
):
    sql = captured_sql(
        viewer_client,
        f"/api/metrics/series/ORGANIZATION/{three_years.uid}",
        {
            "metric_uid": "total_ar",
            "bucket": "month",
            "start_date": "2024-07-01",
            "end_date": "2025-06-30",
        },
        VALUES,
    )
    plan = plan_of(sql)
    assert scanned(plan, VALUES) == {"y2024", "y2025"}, plan
    assert read_by(plan, UNIQUE_INDEX) == {"y2024", "y2025"}, plan


def test_as_of_list_reads_one_years_history_partition_by_the_as_of_index(
    three_years, viewer_client
):
    history = "metrics_metricvaluehistory"
    sql = captured_sql(
        viewer_client,
        f"/api/metrics/values/ORGANIZATION/{three_years.uid}",
        {
            "start_date": "2025-02-01",
            "end_date": "2025-06-30",
            "as_of": datetime.now(UTC).isoformat(),
        },
        history,
    )
    plan = plan_of(sql)
    assert scanned(plan, history) == {"y2025"}, plan
    assert read_by(plan, "metricvaluehistory_asof_idx") == {"y2025"}, plan


def test_latest_reads_partitions_newest_first_and_stops_at_the_first_with_a_row(
    three_years, viewer_client
):
    """``latest`` names no date: its newest-first probe cannot prune, but the partitions
    are range partitions in date order, so PostgreSQL appends them newest first and the
    ``LIMIT 1`` stops in the newest partition holding a row; older ones are never read.
    How the row is then fetched (by uid, which is not the partition key: one probe of each
    partition's primary key, or a semi-join over the entity's rows) depends on the data."""
    sql = captured_sql(
        viewer_client,
        f"/api/metrics/values/ORGANIZATION/{three_years.uid}",
        {"latest": "true"},
        VALUES,
    )
    # The planner's own choice: how the row is then fetched depends on the entity's size.
    plan = plan_of(sql, analyze=True, index_reads_only=False)
    newest_first = [
        (part, run.strip("()")) for part, run in index_scans(plan, UNIQUE_INDEX, backward_only=True)
    ]
    read = [part for part, run in newest_first if run != "never executed"]
    skipped = {part for part, run in newest_first if run == "never executed"}
    this_year = date.today().year
    later_years = [f"y{year}" for year in range(this_year + 2, 2026, -1)]
    assert read == ["future", *later_years, "y2026"], plan
    assert skipped == {f"y{year}" for year in range(2000, 2026)} | {"past"}, plan
