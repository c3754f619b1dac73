"""Query counts of the value endpoints are pinned: a list costs the same number of
queries whatever the number of rows, and a create stays within five, authentication
included."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metrics.models import MetricValue


@pytest.fixture
def dso(make_definition):
    return make_definition("dso", name="DSO", value_type="days")


def fill(definition, organization, days: int) -> None:
    start = date(2026, 1, 1)
    MetricValue.objects.bulk_create(
        MetricValue(
            metric=definition,
            context_type="ORGANIZATION",
            entity_uid=organization.uid,
            metric_date=start + timedelta(days=n),
            value=Decimal(n),
            metadata={"n": n},
        )
        for n in range(days)
    )


def real_queries(context: CaptureQueriesContext) -> list[str]:
    """Executed SQL without the savepoint bookkeeping of the test's own transaction."""
    return [
        query["sql"]
        for query in context.captured_queries
        if not query["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO"))
    ]


LIST_PARAMS = {"start_date": "2026-01-01", "end_date": "2026-12-31", "per_page": 1000}


@pytest.mark.parametrize("rows", [3, 300])
@pytest.mark.parametrize(
    ("extra", "queries"),
    [
        # auth, entity, one page query that also counts (COUNT(*) OVER ())
        ({}, 3),
        ({"include_metadata": "true", "sort": "value"}, 3),
        ({"latest": "true"}, 3),
        # + the metric_uid lookup
        ({"metric_uid": "total_ar,dso"}, 4),
        ({"metric_uid": "total_ar", "latest": "true"}, 4),
        # a page past the end has no row to carry the total: + a COUNT
        ({"page": "99"}, 4),
    ],
)
def test_list_query_count_does_not_grow_with_rows(
    viewer_client, organization, total_ar, dso, django_assert_num_queries, rows, extra, queries
):
    fill(total_ar, organization, rows)
    fill(dso, organization, rows)
    url = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
    with django_assert_num_queries(queries):
        response = viewer_client.get(url, {**LIST_PARAMS, **extra})
    assert response.status_code == 200
    metrics = len(extra.get("metric_uid", "total_ar,dso").split(","))
    expected = metrics if extra.get("latest") == "true" else rows * metrics
    assert response.json()["data"]["_meta"]["total_items"] == expected


@pytest.mark.parametrize("context_type", ["ORGANIZATION", "PARTY", "USER"])
def test_create_takes_at_most_five_queries(
    client_for, staff, editor, organization, party, make_definition, context_type
):
    definition = make_definition("some_metric", context_type=context_type)
    entity = {"ORGANIZATION": organization, "PARTY": party, "USER": editor}[context_type]
    client = client_for(editor)
    url = f"/api/metrics/values/{context_type}/{entity.uid}"
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            url, {"metric_uid": definition.uid, "metric_date": "2026-03-15", "value": 3}
        )
    assert response.status_code == 201, response.content
    queries = real_queries(captured)
    # auth user, entity (visibility), definition, write permission, INSERT
    assert len(queries) <= 5, queries
    assert sum(q.upper().startswith("INSERT") for q in queries) == 1


def test_detail_get_takes_three_queries(
    viewer_client, organization, total_ar, django_assert_num_queries
):
    fill(total_ar, organization, 1)
    value = MetricValue.objects.get()
    with django_assert_num_queries(3):  # auth, value + definition, entity visibility
        assert viewer_client.get(f"/api/metrics/values/{value.uid}").status_code == 200
