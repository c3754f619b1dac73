"""The demo loader used by ``make run`` is idempotent."""

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
