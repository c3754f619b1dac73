"""``import_metric_values``, ``export_metric_values`` and ``revert_batch``."""

import csv
import io
import json
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from metrics import ingestion
from metrics.models import MetricValue

HEADER = "context_type,entity_uid,metric_uid,time_unit,metric_date,value,timezone,_metadata\n"
ENGINES = [
    pytest.param("portable", id="portable"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture
def engine(request, db):
    name = request.param
    if name == "postgresql":
        request.getfixturevalue("postgres_only")
    return name


@pytest.fixture
def catalogue(make_definition, total_ar):
    make_definition("party_count", context_type="PARTY", value_type="count")
    make_definition("retired", is_active=False)
    return total_ar


def org_line(org, day, value, extra=""):
    return f"ORGANIZATION,{org.uid},total_ar,,{day},{value},{extra}\n"


def history(org, party, days=30, start=date(2025, 1, 1)):
    lines = []
    for n in range(days):
        day = (start + timedelta(days=n)).isoformat()
        lines.append(org_line(org, day, n * 100, ","))
        lines.append(f'PARTY,{party.uid},party_count,day,{day},{n},UTC,"{{""n"": {n}}}"\n')
    return HEADER + "".join(lines)


def run(path, *args, expect_failure=False):
    out, err = io.StringIO(), io.StringIO()
    if expect_failure:
        with pytest.raises(CommandError) as failure:
            call_command("import_metric_values", str(path), *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue(), failure.value
    call_command("import_metric_values", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue(), None


def table():
    """The table's content, without what differs between runs by design."""
    return sorted(
        (
            str(v.entity_uid),
            v.metric_id,
            v.time_unit,
            v.metric_date,
            v.value,
            v.timezone,
            json.dumps(v.metadata, sort_keys=True),
        )
        for v in MetricValue.objects.all()
    )


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_import_reports_bad_rows_by_line_and_exits_non_zero(
    tmp_path, engine, catalogue, organization, party
):
    ghost = uuid.uuid4()
    path = tmp_path / "values.csv"
    path.write_text(
        HEADER
        + org_line(organization, "2025-01-01", 100, ",")  # line 2
        + org_line(organization, "2025-01-02", "12.5", ",")  # 3: cents must be whole
        + f"ORGANIZATION,{ghost},total_ar,,2025-01-02,1,,\n"  # 4: no such entity
        + f"PARTY,{party.uid},party_count,month,2025-01-05,1,,\n"  # 5: misaligned
        + f"PARTY,{party.uid},retired,,2025-01-05,1,,\n"  # 6: wrong context and retired
        + "ORGANIZATION,nope,total_ar,,2025-01-02,1,,\n"  # 7: bad uuid
        + f"ORGANIZATION,{organization.uid},total_ar\n"  # 8: short row
        + org_line(organization, "2025-01-03", 5, "UTC,{bad")  # 9: bad JSON
    )
    errors_out = tmp_path / "errors.csv"
    out, err, failure = run(
        path, "--engine", engine, "--errors-out", str(errors_out), expect_failure=True
    )
    assert failure.returncode == 1
    assert "7 row(s) failed" in str(failure)
    lines = [line for line in err.splitlines() if line.startswith("line ")]
    assert [line.split(":")[0] for line in lines] == [f"line {n}" for n in range(3, 10)]
    assert "line 4: entity_uid: No ORGANIZATION with this uid was found." in lines
    assert "line 3: value: A value in cents must be a whole number" in lines[0]
    assert "use 2025-01-01" in lines[2]
    assert "1 created" in out and "7 error" in out
    batch_id = out.split("batch_id ")[-1].split()[0]
    assert [str(v.batch_id) for v in MetricValue.objects.all()] == [batch_id]

    # The errors file is importable as it is once fixed.
    rows = list(csv.DictReader(errors_out.open()))
    assert [r["_line"] for r in rows] == [str(n) for n in range(3, 10)]
    fixed = tmp_path / "fixed.csv"
    with fixed.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        first = rows[0] | {"value": "13"}
        writer.writerow(first)
    out, _, _ = run(fixed, "--engine", engine)
    assert "1 created" in out


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_rerun_is_a_no_op_and_dry_run_writes_nothing(
    tmp_path, engine, catalogue, organization, party
):
    path = tmp_path / "history.csv"
    path.write_text(history(organization, party))
    out, _, _ = run(path, "--engine", engine, "--dry-run", "--batch-size", "7")
    assert "60 created" in out and "nothing was kept" in out
    assert not MetricValue.objects.exists()
    out, _, _ = run(path, "--engine", engine, "--batch-size", "7")
    assert "60 created" in out
    stamps = dict(MetricValue.objects.values_list("uid", "updated_at"))
    out, _, _ = run(path, "--engine", engine)
    assert "60 unchanged" in out and "0 created" in out and "0 updated" in out
    assert dict(MetricValue.objects.values_list("uid", "updated_at")) == stamps
    out, _, _ = run(path, "--engine", engine, "--on-conflict", "skip")
    assert "60 skipped" in out
    _, _, failure = run(path, "--engine", engine, "--on-conflict", "error", expect_failure=True)
    assert "60 row(s) failed" in str(failure)


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_interrupted_run_restarted_ends_like_a_clean_run(
    tmp_path, engine, catalogue, organization, party, monkeypatch
):
    path = tmp_path / "history.csv"
    path.write_text(history(organization, party, days=50))

    def crash_after_two(batch_number):
        if batch_number == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(ingestion, "after_batch_commit", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        run(path, "--engine", engine, "--batch-size", "30")
    assert MetricValue.objects.count() == 60  # two batches of 30 were committed
    monkeypatch.setattr(ingestion, "after_batch_commit", None)
    out, _, _ = run(path, "--engine", engine, "--batch-size", "30")
    assert "40 created" in out and "60 unchanged" in out
    resumed = table()

    MetricValue.objects.all().delete()
    run(path, "--engine", engine, "--batch-size", "30")
    assert table() == resumed
    assert len(resumed) == 100


@pytest.mark.django_db
@pytest.mark.postgres
def test_both_engines_give_identical_results(
    postgres_only, tmp_path, catalogue, organization, party
):
    ghost = uuid.uuid4()
    text = history(organization, party, days=20) + (
        org_line(organization, "2025-01-01", 7, ",")  # repeats a key of the file
        + org_line(organization, "2025-01-01", 7, ",")
        + org_line(organization, "2025-01-02", 1.5, ",")
        + f"ORGANIZATION,{ghost},total_ar,,2025-01-02,1.5,,\n"
        + f"PARTY,{party.uid},party_count,,2025-02-02,-1,Nowhere/Land,\n"
    )
    path = tmp_path / "mixed.csv"
    path.write_text(text)
    outcomes = {}
    for engine in ("portable", "postgresql"):
        MetricValue.objects.all().delete()
        first = run(path, "--engine", engine, "--batch-size", "9", expect_failure=True)
        second = run(path, "--engine", engine, "--batch-size", "9", expect_failure=True)
        outcomes[engine] = {
            "report": [
                (out.split(": ", 1)[1].split(". batch_id")[0], err.replace(engine, "-"))
                for out, err, _ in (first, second)
            ],
            "table": table(),
        }
    assert outcomes["portable"]["report"][0][0] == (
        "40 created, 1 updated, 1 unchanged, 0 skipped, 3 error"
    )
    assert outcomes["portable"] == outcomes["postgresql"]


@pytest.mark.django_db
def test_jsonl_and_stdin_and_format_flag(tmp_path, catalogue, organization):
    lines = [
        {
            "context_type": "ORGANIZATION",
            "entity_uid": str(organization.uid),
            "metric_uid": "total_ar",
            "metric_date": "2025-01-01",
            "value": 12345678901,
            "_metadata": {"ratio": 0.25},
        },
        {
            "context_type": "ORGANIZATION",
            "entity_uid": str(organization.uid),
            "metric_uid": "total_ar",
            "metric_date": "2025-01-02",
            "value": "3",
        },
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n\nnot json\n"
    path = tmp_path / "values.jsonl"
    path.write_text(text)
    out, err, _ = run(path, expect_failure=True)
    assert "2 created" in out and "line 4: Not valid JSON" in err
    stored = MetricValue.objects.get(metric_date=date(2025, 1, 1))
    assert stored.value == Decimal("12345678901") and stored.metadata == {"ratio": 0.25}

    MetricValue.objects.all().delete()
    call_command(
        "import_metric_values",
        "-",
        "--format",
        "jsonl",
        stdin=io.StringIO(json.dumps(lines[1]) + "\n"),
        stdout=io.StringIO(),
    )
    assert MetricValue.objects.count() == 1
    with pytest.raises(CommandError, match="Cannot tell the format"):
        call_command("import_metric_values", str(tmp_path / "x.txt"), stdout=io.StringIO())


@pytest.mark.django_db
def test_bad_header_fails_the_whole_file(tmp_path, catalogue):
    path = tmp_path / "values.csv"
    path.write_text("context_type,entity_uid,metric,value\n")
    with pytest.raises(CommandError, match="Unknown column"):
        run(path)
    path.write_text("context_type,entity_uid,metric_uid\n")
    with pytest.raises(CommandError, match="Missing required column"):
        run(path)


@pytest.mark.django_db
def test_allow_inactive_accepts_retired_metrics(tmp_path, catalogue, organization):
    path = tmp_path / "values.csv"
    path.write_text(HEADER + f"ORGANIZATION,{organization.uid},retired,,2025-01-01,1,,\n")
    _, err, _ = run(path, expect_failure=True)
    assert "inactive" in err
    out, _, _ = run(path, "--allow-inactive")
    assert "1 created" in out


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_export_round_trips_through_the_importer(
    tmp_path, engine, catalogue, organization, party, file_format
):
    source = tmp_path / "history.csv"
    source.write_text(history(organization, party, days=10))
    run(source, "--engine", engine)
    before = table()
    exported = tmp_path / f"export.{file_format}"
    err = io.StringIO()
    call_command("export_metric_values", "-o", str(exported), stdout=io.StringIO(), stderr=err)
    assert "Exported 20 value(s)" in err.getvalue()
    out, _, _ = run(exported, "--engine", engine)
    assert "20 unchanged" in out
    MetricValue.objects.all().delete()
    run(exported, "--engine", engine)
    assert table() == before


@pytest.mark.django_db
def test_export_filters(tmp_path, catalogue, organization, other_organization, party):
    source = tmp_path / "history.csv"
    source.write_text(
        history(organization, party, days=10) + org_line(other_organization, "2025-01-01", 1, ",")
    )
    run(source)

    def export(*args):
        out = io.StringIO()
        call_command("export_metric_values", *args, stdout=out, stderr=io.StringIO())
        return list(csv.DictReader(io.StringIO(out.getvalue())))

    assert len(export()) == 21
    assert len(export("--organization", str(organization.uid))) == 20
    assert len(export("--metric-uid", "party_count")) == 10
    window = export("--start-date", "2025-01-03", "--end-date", "2025-01-04")
    assert {row["metric_date"] for row in window} == {"2025-01-03", "2025-01-04"}
    assert export("--time-unit", "month") == []
    with pytest.raises(CommandError, match="Unknown metric"):
        export("--metric-uid", "nope")
    with pytest.raises(CommandError, match="after"):
        export("--start-date", "2025-02-01", "--end-date", "2025-01-01")


@pytest.mark.django_db
def test_revert_batch_deletes_only_what_the_batch_created(tmp_path, catalogue, organization):
    first = tmp_path / "first.csv"
    first.write_text(HEADER + org_line(organization, "2025-01-01", 1, ","))
    run(first)
    second = tmp_path / "second.csv"
    second.write_text(
        HEADER
        + org_line(organization, "2025-01-01", 2, ",")  # updates the first batch's row
        + org_line(organization, "2025-01-02", 2, ",")
    )
    out, _, _ = run(second)
    batch_id = out.split("batch_id ")[-1].split()[0]

    dry = io.StringIO()
    call_command("revert_batch", batch_id, "--dry-run", stdout=dry)
    assert "created 1 value(s)" in dry.getvalue()
    assert MetricValue.objects.count() == 2
    with pytest.raises(CommandError, match="Cancelled"):
        call_command("revert_batch", batch_id, stdin=io.StringIO("no\n"), stdout=io.StringIO())
    call_command("revert_batch", batch_id, stdin=io.StringIO("yes\n"), stdout=io.StringIO())
    remaining = MetricValue.objects.get()
    assert remaining.metric_date == date(2025, 1, 1) and remaining.value == 2
    with pytest.raises(CommandError, match="No value carries"):
        call_command("revert_batch", batch_id, "--no-input", stdout=io.StringIO())


@pytest.mark.django_db
def test_revert_batch_of_a_bulk_call(editor_client, organization, total_ar):
    items = [
        {
            "context_type": "ORGANIZATION",
            "entity_uid": str(organization.uid),
            "metric_uid": "total_ar",
            "metric_date": f"2025-01-0{n}",
            "value": n,
        }
        for n in range(1, 4)
    ]
    response = editor_client.post("/api/metrics/values/bulk", {"items": items}, format="json")
    batch_id = response.json()["data"]["batch_id"]
    call_command("revert_batch", batch_id, "--no-input", stdout=io.StringIO())
    assert not MetricValue.objects.exists()
