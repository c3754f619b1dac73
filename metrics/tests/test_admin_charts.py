"""The admin's chart page (one entity's metric from the series selector), its links from
the values list, a value's page and an entity's page, and an organization's stale series."""

import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from metrics.admin_charts import chart_url
from metrics.models import MetricValue

JAN = date(2025, 1, 1)


def add_day(definition, entity, day, value):
    return MetricValue.objects.create(
        metric=definition,
        context_type=definition.context_type,
        entity_uid=entity.uid,
        time_unit="day",
        metric_date=day,
        value=Decimal(value),
        timezone="UTC",
    )


def chart_of(organization, metric_uid="total_ar", **query):
    url = chart_url(context_type="ORGANIZATION", entity_uid=organization.uid, metric_uid=metric_uid)
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def chart_data(response) -> dict:
    text = response.content.decode()
    found = re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(found.group(1))


@pytest.fixture
def january(total_ar, organization):
    """Ten days of January with the 4th–6th missing: a gap, and a thin month."""
    for offset in range(10):
        if offset not in (3, 4, 5):
            add_day(total_ar, organization, JAN + timedelta(days=offset), 100_00 * (offset + 1))
    return total_ar


def test_day_chart_has_a_point_per_day_and_gaps_as_null(analyst_client, organization, january):
    response = analyst_client.get(chart_of(organization, start="2025-01-01", end="2025-01-10"))

    assert response.status_code == 200
    data = chart_data(response)
    assert len(data["x"]) == 10
    assert data["y"] == [100.0, 200.0, 300.0, None, None, None, 700.0, 800.0, 900.0, 1000.0]
    assert data["format"] == {"min": 2, "max": 2, "suffix": ""}
    assert data["x"][0] == 1735689600  # 2025-01-01T00:00:00Z
    text = response.content.decode()
    assert 'data-points="10"' in text
    assert "1,000.00" in text  # cents shown as currency units, with separators
    assert "metrics/vendor/uplot/uPlot.iife.min.js" in text


def test_month_bucket_marks_a_thin_month(analyst_client, organization, january):
    response = analyst_client.get(
        chart_of(organization, bucket="month", start="2025-01-01", end="2025-02-28")
    )

    data = chart_data(response)
    assert data["y"] == [1000.0, None]  # last day present in January; February is a gap
    assert data["thin"] == [True, False]
    assert '<tr class="thin"><td>2025-01-01</td>' in response.content.decode()


def test_previous_year_line(analyst_client, organization, january, total_ar):
    add_day(total_ar, organization, date(2024, 1, 1), 50_00)
    response = analyst_client.get(
        chart_of(organization, start="2025-01-01", end="2025-01-02", previous_year="on")
    )

    assert chart_data(response)["compare"] == [50.0, None]


def test_chart_reads_the_series_in_one_query(analyst_client, organization, january):
    analyst_client.get(chart_of(organization))  # session and permissions cached
    with CaptureQueriesContext(connection) as queries:
        analyst_client.get(chart_of(organization, bucket="week"))
    values_table = MetricValue._meta.db_table
    assert len([q for q in queries if values_table in q["sql"]]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"bucket": "fortnight"}, "bucket"),
        ({"start": "2025-02-01", "end": "2025-01-01"}, "start"),
        ({"start": "not-a-date"}, "start"),
        ({"bucket": "day", "start": "2020-01-01", "end": "2025-01-01"}, "buckets"),
    ],
)
def test_bad_query_is_a_400_naming_the_problem(analyst_client, organization, january, query, field):
    response = analyst_client.get(chart_of(organization, **query))

    assert response.status_code == 400
    assert field in response.content.decode()


def test_unknown_metric_or_entity_is_404(analyst_client, organization, january, party):
    assert analyst_client.get(chart_of(organization, metric_uid="nope")).status_code == 404
    # total_ar is an ORGANIZATION metric: a party's uid under that context is unknown.
    assert analyst_client.get(chart_of(party)).status_code == 404


def test_chart_needs_admin_login(client, organization, january):
    response = client.get(chart_of(organization))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_value_page_links_to_its_chart_at_its_date(analyst_client, organization, january):
    value = MetricValue.objects.get(metric_date=date(2025, 1, 7))
    page = analyst_client.get(reverse("admin:metrics_metricvalue_change", args=[value.pk]))
    link = chart_url(
        context_type="ORGANIZATION",
        entity_uid=organization.uid,
        metric_uid="total_ar",
        at=date(2025, 1, 7),
        bucket="day",
    )
    assert link.replace("&", "&amp;") in page.content.decode()

    chart = analyst_client.get(link)
    data = chart_data(chart)
    assert data["at"] == 1736208000  # 2025-01-07
    assert len(data["x"]) == 366  # a year ending 182 days after the value's date
    assert '<tr class=" at"><td>2025-01-07</td>' in chart.content.decode()


def test_values_list_filtered_to_one_series_links_to_its_chart(
    analyst_client, organization, january
):
    changelist = reverse("admin:metrics_metricvalue_changelist")
    filtered = analyst_client.get(
        f"{changelist}?entity_uid={organization.uid}&metric__id__exact={january.pk}"
    )
    unfiltered = analyst_client.get(changelist)

    link = chart_url(
        context_type="ORGANIZATION", entity_uid=organization.uid, metric_uid="total_ar"
    )
    assert link in filtered.content.decode()
    assert "/chart/" not in unfiltered.content.decode()


def test_organization_page_lists_stale_series_first_with_chart_links(
    analyst_client, organization, january, make_definition
):
    make_definition("dso", context_type="ORGANIZATION", value_type="days", storage_unit="raw")
    page = analyst_client.get(reverse("admin:entities_organization_change", args=[organization.pk]))
    text = page.content.decode()

    assert page.status_code == 200
    rows = re.findall(r'<tr class="(stale|fresh)">.*?/chart/ORGANIZATION/[^/]+/(\w+)/', text)
    # Both are stale (January 2025 is long past); dso was never written, so it comes first.
    assert rows == [("stale", "dso"), ("stale", "total_ar")]
    assert chart_of(organization, metric_uid="dso") in text
