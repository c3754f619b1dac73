"""``manage.py series``: the series selector for operators, as a table or CSV."""

import io
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from entities.models import Party
from metrics.models import MetricValue

pytestmark = pytest.mark.django_db


@pytest.fixture
def flow(make_definition, organization):
    definition = make_definition("collected", value_type="currency")
    for day, value in [(date(2026, 1, 5), 10), (date(2026, 1, 6), 2.5), (date(2026, 3, 1), 7)]:
        MetricValue.objects.create(
            metric=definition,
            context_type="ORGANIZATION",
            entity_uid=organization.uid,
            metric_date=day,
            value=value,
        )
    return definition


def run(*args) -> str:
    out = io.StringIO()
    call_command("series", *args, stdout=out)
    return out.getvalue()


def test_csv_lists_every_bucket(organization, flow):
    output = run(
        "--entity", str(organization.uid), "--metric", "collected", "--start", "2026-01-01",
        "--end", "2026-03-31", "--format", "csv",
    )  # fmt: skip

    assert output.splitlines() == [
        "metric_uid,start,end,value,count,expected,coverage,source",
        "collected,2026-01-01,2026-01-31,12.5,2,31,0.0645,days",
        "collected,2026-02-01,2026-02-28,,0,28,0,",
        "collected,2026-03-01,2026-03-31,7,1,31,0.0323,days",
    ]


def test_table_with_compare(organization, flow):
    output = run(
        "--entity", str(organization.uid), "--metric", "collected", "--start", "2026-03-01",
        "--end", "2026-03-31", "--compare", "previous_period",
    )  # fmt: skip

    header, row = output.splitlines()
    assert header.split() == [
        "metric_uid", "start", "end", "value", "count", "expected", "coverage", "source",
        "compare_value", "change", "change_pct",
    ]  # fmt: skip
    assert row.split() == ["collected", "2026-03-01", "2026-03-31", "7", "1", "31", "0.0323",
                           "days"]  # fmt: skip


def test_across_parties(organization, make_definition):
    definition = make_definition("party_ar", context_type="PARTY", is_snapshot=True)
    for name, value in [("A", 3), ("B", 4)]:
        party = Party.objects.create(organization=organization, name=name)
        MetricValue.objects.create(
            metric=definition, context_type="PARTY", entity_uid=party.uid,
            metric_date=date(2026, 1, 9), value=value,
        )  # fmt: skip

    output = run(
        "--entity", str(organization.uid), "--metric", "party_ar", "--across-parties",
        "--bucket", "year", "--start", "2026-01-01", "--end", "2026-12-31", "--format", "csv",
    )  # fmt: skip

    assert output.splitlines()[1] == "party_ar,2026-01-01,2026-12-31,7,2,730,0.0027,days,2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "nope"], "Unknown metric"),
        (["--metric", "collected", "--entity", "not-a-uid"], "No ORGANIZATION"),
        (["--metric", "collected", "--start", "2026-02-01", "--end", "2026-01-01"], "after"),
        (["--metric", "collected", "--across-parties"], "PARTY metrics"),
    ],
)
def test_bad_arguments_are_errors(organization, flow, args, message):
    if "--entity" not in args:
        args = [*args, "--entity", str(organization.uid)]

    with pytest.raises(CommandError, match=message):
        run(*args)
