"""The demo loader used by ``make run`` is idempotent."""

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from entities.models import Membership, Organization, Party, User
from metrics.models import MetricDefinition, MetricValue

MODELS = (Organization, Party, User, Membership, MetricDefinition, MetricValue)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.mark.django_db
def test_running_the_demo_loader_twice_duplicates_nothing():
    out = StringIO()
    call_command("seed_demo", "--days", "40", stdout=out)
    first = counts()
    assert first["MetricDefinition"] >= 12
    assert first["Party"] >= 3 and first["User"] >= 3
    assert first["MetricValue"] > 40 * first["MetricDefinition"]
    assert "demo-editor-pass" in out.getvalue()

    call_command("seed_demo", "--days", "40", "--quiet", stdout=StringIO())
    assert counts() == first


@pytest.mark.django_db
def test_demo_values_respect_the_metric_rules():
    call_command("seed_demo", "--days", "40", "--quiet", stdout=StringIO())
    for value in MetricValue.objects.select_related("metric").iterator():
        definition = value.metric
        assert value.context_type == definition.context_type
        if definition.value_type == "count" or definition.storage_unit == "cents":
            assert value.value == value.value.to_integral_value()
        if value.time_unit == "month":
            assert value.metric_date.day == 1


@pytest.mark.django_db
def test_demo_shows_a_gap_and_a_correction_once():
    from datetime import timedelta

    from metrics.demo import DEMO_CORRECTION_REASON, seed_demo
    from metrics.models import MetricValueHistory

    today = date(2026, 3, 31)
    seed_demo(days=60, today=today)
    seed_demo(days=60, today=today)

    organization = Organization.objects.get(name="Demo Receivables Inc.")
    days = set(
        MetricValue.objects.filter(
            entity_uid=organization.uid, metric__uid="total_ar", time_unit="day"
        ).values_list("metric_date", flat=True)
    )
    missing = {today - timedelta(days=ago) for ago in range(60)} - days
    assert missing == {today - timedelta(days=ago) for ago in range(45, 52)}
    corrected = MetricValue.objects.get(
        entity_uid=organization.uid,
        metric__uid="total_ar",
        time_unit="day",
        metric_date=today - timedelta(days=20),
    )
    history = MetricValueHistory.objects.filter(value_uid=corrected.uid).order_by("version")
    assert [(h.version, h.reason) for h in history] == [(1, None), (2, DEMO_CORRECTION_REASON)]
    assert history[1].source == "admin"
    assert history[1].value - history[0].value == 1_250_000
