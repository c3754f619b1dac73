"""Reads of the metrics domain: entity visibility and the chainable value queries."""

import re
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from metrics import selectors
from metrics.models import MetricValue

from .plans import index_scans


def add(definition, entity, context_type, metric_date, value=1, time_unit="day"):
    return MetricValue.objects.create(
        metric=definition,
        context_type=context_type,
        entity_uid=entity.uid,
        metric_date=metric_date,
        time_unit=time_unit,
        value=Decimal(value),
    )


@pytest.fixture
def dso(make_definition):
    return make_definition("dso", value_type="days")


def test_entity_get_respects_visibility(organization, other_organization, viewer, staff):
    assert (
        selectors.entity_get(context_type="ORGANIZATION", entity_uid=organization.uid, user=viewer)
        == organization
    )
    assert (
        selectors.entity_get(
            context_type="ORGANIZATION", entity_uid=other_organization.uid, user=viewer
        )
        is None
    )
    assert (
        selectors.entity_get(
            context_type="ORGANIZATION", entity_uid=other_organization.uid, user=staff
        )
        == other_organization
    )


def test_entity_get_looks_in_the_table_of_the_context(organization, party, viewer):
    assert selectors.entity_get(context_type="PARTY", entity_uid=party.uid, user=viewer) == party
    assert (
        selectors.entity_get(context_type="PARTY", entity_uid=organization.uid, user=viewer) is None
    )


def test_for_entity_and_in_range(organization, party, total_ar):
    for offset in range(5):
        add(total_ar, organization, "ORGANIZATION", date(2026, 1, 1) + timedelta(days=offset))
    add(total_ar, party, "PARTY", date(2026, 1, 2))
    found = (
        selectors.metric_values()
        .for_entity(context_type="ORGANIZATION", entity_uid=organization.uid)
        .in_range(date(2026, 1, 2), date(2026, 1, 4))
    )
    assert sorted(v.metric_date.day for v in found) == [2, 3, 4]
    open_ended = (
        selectors.metric_values()
        .for_entity(context_type="ORGANIZATION", entity_uid=organization.uid)
        .in_range(None, date(2026, 1, 1))
    )
    assert open_ended.count() == 1


def test_latest_per_metric_picks_newest_per_metric_and_unit(organization, party, total_ar, dso):
    add(total_ar, organization, "ORGANIZATION", date(2026, 1, 1), 1)
    newest_ar = add(total_ar, organization, "ORGANIZATION", date(2026, 2, 1), 2)
    add(total_ar, organization, "ORGANIZATION", date(2026, 3, 1), 3, time_unit="month")
    newest_dso = add(dso, organization, "ORGANIZATION", date(2025, 1, 1), 4)
    add(dso, party, "ORGANIZATION", date(2027, 1, 1), 5)  # another entity
    latest = selectors.metric_values().latest_per_metric(
        context_type="ORGANIZATION", entity_uid=organization.uid, time_unit="day"
    )
    assert {v.uid for v in latest} == {newest_ar.uid, newest_dso.uid}
    only_dso = selectors.metric_values().latest_per_metric(
        context_type="ORGANIZATION",
        entity_uid=organization.uid,
        time_unit="day",
        metric_ids=[dso.pk],
    )
    assert [v.uid for v in only_dso] == [newest_dso.uid]


def test_latest_per_metric_of_entity_without_values_is_empty(organization, total_ar):
    latest = selectors.metric_values().latest_per_metric(
        context_type="ORGANIZATION", entity_uid=uuid.uuid4(), time_unit="day"
    )
    assert list(latest) == []


def test_latest_per_metric_is_one_statement(organization, total_ar, dso, django_assert_num_queries):
    add(total_ar, organization, "ORGANIZATION", date(2026, 1, 1))
    with django_assert_num_queries(1):
        rows = list(
            selectors.metric_values().latest_per_metric(
                context_type="ORGANIZATION", entity_uid=organization.uid, time_unit="day"
            )
        )
    assert len(rows) == 1


@pytest.mark.postgres
def test_latest_per_metric_descends_the_unique_index(postgres_only, organization, total_ar):
    """The plan is one LIMIT 1 index probe per definition, not a scan of the history."""
    MetricValue.objects.bulk_create(
        MetricValue(
            metric=total_ar,
            context_type="ORGANIZATION",
            entity_uid=organization.uid,
            metric_date=date(1950, 1, 1) + timedelta(days=n),
            value=Decimal(n),
        )
        for n in range(20_000)
    )
    # Other entities' histories of the same metric, as in any real table: the metric-first
    # index must not look like the better path to the planner.
    MetricValue.objects.bulk_create(
        MetricValue(
            metric=total_ar,
            context_type="ORGANIZATION",
            entity_uid=uuid.uuid4(),
            metric_date=date(2026, 1, 1) + timedelta(days=n % 300),
            value=Decimal(n),
        )
        for n in range(20_000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metrics_metricvalue")
    queryset = selectors.metric_values().latest_per_metric(
        context_type="ORGANIZATION", entity_uid=organization.uid, time_unit="day"
    )
    plan = queryset.explain(analyze=True)
    assert index_scans(plan, "metricvalue_entity_metric_unit_date_uniq"), plan
    assert "Limit" in plan
    # Backward index scan touching one row, not a sort over the 20,000.
    assert "Index Scan Backward" in plan or "Index Only Scan Backward" in plan, plan
    # No partition holding rows is read whole (on PostgreSQL the table is partitioned by
    # year; an empty partition may be "scanned" at no cost).
    assert not re.search(r"Seq Scan on metrics_metricvalue_(past|y200[0-4]|y2026)\b", plan), plan


def test_metric_value_get_visible(organization, other_organization, viewer, total_ar):
    mine = add(total_ar, organization, "ORGANIZATION", date(2026, 1, 1))
    theirs = add(total_ar, other_organization, "ORGANIZATION", date(2026, 1, 1))
    value, entity = selectors.metric_value_get_visible(uid=mine.uid, user=viewer)
    assert value == mine and entity == organization
    assert selectors.metric_value_get_visible(uid=theirs.uid, user=viewer) is None
    assert selectors.metric_value_get_visible(uid=uuid.uuid4(), user=viewer) is None


def test_metric_definitions_by_uid(total_ar, dso):
    assert set(selectors.metric_definitions_by_uid(["total_ar", "dso", "ghost"])) == {
        "total_ar",
        "dso",
    }
