"""``manage.py report_gaps``: the missing runs of an organization's series, for cron."""

import io
import subprocess
import sys
from datetime import date
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from entities.models import Party
from metrics.models import MetricValue

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def setup(organization, make_definition):
    flow = make_definition("org_flow")
    party_flow = make_definition("party_flow", context_type="PARTY")
    full = Party.objects.create(organization=organization, name="Full")
    holey = Party.objects.create(organization=organization, name="Holey")
    retired = Party.objects.create(organization=organization, name="Retired", is_active=False)
    for day in range(1, 6):
        for definition, entity in [(flow, organization), (party_flow, full), (party_flow, retired)]:
            MetricValue.objects.create(
                metric=definition, context_type=definition.context_type, entity_uid=entity.uid,
                metric_date=date(2026, 1, day), value=1,
            )  # fmt: skip
    for day in (1, 5):
        MetricValue.objects.create(
            metric=party_flow, context_type="PARTY", entity_uid=holey.uid,
            metric_date=date(2026, 1, day), value=1,
        )  # fmt: skip
    return organization, holey


def run(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("report_gaps", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def window(organization, *extra):
    return (
        "--organization", str(organization.uid), "--start", "2026-01-01", "--end", "2026-01-05",
        *extra,
    )  # fmt: skip


def test_json_is_one_document_and_exit_1_on_a_gap(setup):
    organization, holey = setup

    status, output = run(*window(organization, "--metric", "org_flow,party_flow", "--format",
                                 "json"))  # fmt: skip

    assert status == 1
    report = orjson.loads(output)
    assert report["series"] == 3  # the organization and two active parties
    assert report["series_with_gaps"] == 1
    assert report["gaps"] == [
        {
            "context_type": "PARTY",
            "entity_uid": str(holey.uid),
            "entity_name": "Holey",
            "metric_uid": "party_flow",
            "missing": [{"start": "2026-01-02", "end": "2026-01-04", "periods": 3}],
        }
    ]


def test_no_gap_exits_0(setup):
    organization, _ = setup

    status, output = run(*window(organization, "--metric", "org_flow"))

    assert status == 0
    assert output == "0 of 1 series have missing days from 2026-01-01 to 2026-01-05.\n"


def test_csv(setup):
    organization, holey = setup

    _, output = run(*window(organization, "--metric", "party_flow", "--format", "csv"))

    assert output.splitlines() == [
        "context_type,entity_uid,entity_name,metric_uid,start,end,periods",
        f"PARTY,{holey.uid},Holey,party_flow,2026-01-02,2026-01-04,3",
    ]


def test_prometheus_textfile(setup, tmp_path):
    organization, _ = setup
    target = tmp_path / "exante.prom"

    status, output = run(
        *window(organization, "--metric", "org_flow,party_flow", "--format", "prometheus",
                "--output", str(target)),
    )  # fmt: skip

    assert (status, output) == (1, "")
    lines = target.read_text().splitlines()
    label = f'{{organization="{organization.uid}"}}'
    assert f"exante_series_with_gaps{label} 1" in lines
    # Today (in Los Angeles) is long past January: every series is stale.
    assert f"exante_stale_series{label} 3" in lines
    assert [path.name for path in tmp_path.iterdir()] == ["exante.prom"]


@pytest.mark.parametrize(
    "args",
    [
        ("--organization", "00000000-0000-0000-0000-000000000000", "--metric", "org_flow"),
        ("--organization", "not-a-uid", "--metric", "org_flow"),
        ("--metric", "nope"),
        ("--metric", "org_flow", "--start", "2026-02-01", "--end", "2026-01-01"),
    ],
)
def test_bad_arguments_exit_2(setup, args):
    organization, _ = setup
    if "--organization" not in args:
        args = ("--organization", str(organization.uid), *args)

    status, _ = run(*args)

    assert status == 2


def test_a_bad_date_on_the_command_line_exits_2():
    result = subprocess.run(
        [sys.executable, "manage.py", "report_gaps", "--organization", "x", "--metric", "y",
         "--start", "2026-02-30"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert result.returncode == 2
    assert "--start" in result.stderr
    assert result.stdout == ""
