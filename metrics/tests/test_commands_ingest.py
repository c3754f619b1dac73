"""``import_metric_values``, ``export_metric_values`` and ``revert_batch``."""

import csv
import gzip
import io
import json
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from metrics.ingest import importer
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

    monkeypatch.setattr(importer, "after_batch_commit", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        run(path, "--engine", engine, "--batch-size", "30")
    assert MetricValue.objects.count() == 60  # two batches of 30 were committed
    monkeypatch.setattr(importer, "after_batch_commit", None)
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


# --- Bytes that are not UTF-8 ---------------------------------------------------------------

BOM = b"\xef\xbb\xbf"
COMPRESSIONS = ["plain", "gzip"]


def run_bytes(tmp_path, name, data: bytes, compression: str, engine: str):
    """Import ``data`` as the file ``name`` (gzip-compressed if asked), expecting failed
    rows; → stdout, stderr, the CommandError and the --errors-out path."""
    if compression == "gzip":
        path = tmp_path / f"{name}.gz"
        path.write_bytes(gzip.compress(data))
    else:
        path = tmp_path / name
        path.write_bytes(data)
    errors_out = tmp_path / "errors.csv"
    out, err, failure = run(
        path, "--engine", engine, "--errors-out", str(errors_out), expect_failure=True
    )
    return out, err, failure, errors_out


def reported(err):
    return [line for line in err.splitlines() if line.startswith("line ")]


def errors_file_rows(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {name: cell for name, cell in row.items() if cell != ""}
            for row in csv.DictReader(handle)
        ]


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_csv_line_that_is_not_utf8_is_a_bad_row(
    tmp_path, engine, compression, catalogue, organization, party
):
    org = f"ORGANIZATION,{organization.uid},total_ar,,".encode()
    data = (
        BOM  # a byte order mark is not part of the header
        + HEADER.encode()
        + org + b"2025-01-01,1,,\n"  # line 2
        + org + b'2025-01-02,2,,"{""note"": ""caf\xe9""}"\n'  # 3: Latin-1 e-acute
        + org + b"2025-01-03,3,,\n"  # 4
        + f"PARTY,{party.uid},party_count,,2025-01-03,4,,".encode()
        + b'"{""note"": ""first\nsecond \xff""}"\n'  # 5-6: one record, bad byte on 6
        + org + b'2025-01-04,5,,"{""note"": ""d\xc3\xa9j\xc3\xa0""}"\n'  # 7: valid UTF-8
        + org + b"2025-01-05,6,,\xe2\x82"  # 8: a sequence cut short by the end of the file
    )  # fmt: skip
    out, err, failure, errors_out = run_bytes(tmp_path, "values.csv", data, compression, engine)
    assert failure.returncode == 1
    assert str(failure) == f"3 row(s) failed; see {errors_out}."
    assert reported(err) == [
        "line 3: Not valid UTF-8: byte 0xE9.",
        "line 5: Not valid UTF-8: byte 0xFF on line 6.",
        "line 8: Not valid UTF-8: byte 0xE2.",
    ]
    assert "3 created, 0 updated, 0 unchanged, 0 skipped, 3 error" in out
    assert sorted(MetricValue.objects.values_list("metric_date", "value")) == [
        (date(2025, 1, 1), Decimal(1)),
        (date(2025, 1, 3), Decimal(3)),
        (date(2025, 1, 4), Decimal(5)),
    ]
    org_cells = {
        "context_type": "ORGANIZATION",
        "entity_uid": str(organization.uid),
        "metric_uid": "total_ar",
    }
    assert errors_file_rows(errors_out) == [
        org_cells
        | {
            "metric_date": "2025-01-02",
            "value": "2",
            "_metadata": '{"note": "caf\\xe9"}',
            "_line": "3",
            "_error": "Not valid UTF-8: byte 0xE9.",
        },
        {
            "context_type": "PARTY",
            "entity_uid": str(party.uid),
            "metric_uid": "party_count",
            "metric_date": "2025-01-03",
            "value": "4",
            "_metadata": '{"note": "first\nsecond \\xff"}',
            "_line": "5",
            "_error": "Not valid UTF-8: byte 0xFF on line 6.",
        },
        org_cells
        | {
            "metric_date": "2025-01-05",
            "value": "6",
            "_metadata": "\\xe2\\x82",
            "_line": "8",
            "_error": "Not valid UTF-8: byte 0xE2.",
        },
    ]


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_jsonl_line_that_is_not_utf8_is_a_bad_row(
    tmp_path, engine, compression, catalogue, organization
):
    def item(day, value, metadata=b"{}"):
        return (
            b'{"context_type": "ORGANIZATION", "entity_uid": "%s", "metric_uid": "total_ar", '
            b'"metric_date": "%s", "value": %d, "_metadata": %s}'
            % (str(organization.uid).encode(), day.encode(), value, metadata)
        )

    data = (
        BOM
        + item("2025-01-01", 1) + b"\n"  # line 1
        + item("2025-01-02", 2, b'{"note": "caf\xe9"}') + b"\n"  # 2
        + item("2025-01-03", 3, '{"note": "d\u00e9j\u00e0"}'.encode()) + b"\n"  # 3
        + item("2025-01-04", 4).replace(b": 4", b": 4\xff") + b"\n"  # 4: not JSON either
        + b"\n"  # 5: blank
        + item("2025-01-05", 5) + b"\n"  # 6
        + item("2025-01-06", 6, b'{"note": "\xe2\x82')  # 7: cut short by the end of the file
    )  # fmt: skip
    out, err, failure, errors_out = run_bytes(tmp_path, "values.jsonl", data, compression, engine)
    assert failure.returncode == 1
    assert str(failure) == f"3 row(s) failed; see {errors_out}."
    assert reported(err) == [
        "line 2: Not valid UTF-8: byte 0xE9.",
        "line 4: Not valid UTF-8: byte 0xFF.",
        "line 7: Not valid UTF-8: byte 0xE2.",
    ]
    assert "3 created, 0 updated, 0 unchanged, 0 skipped, 3 error" in out
    assert sorted(MetricValue.objects.values_list("metric_date", "metadata")) == [
        (date(2025, 1, 1), {}),
        (date(2025, 1, 3), {"note": "d\u00e9j\u00e0"}),
        (date(2025, 1, 5), {}),
    ]
    assert errors_file_rows(errors_out) == [
        {
            "context_type": "ORGANIZATION",
            "entity_uid": str(organization.uid),
            "metric_uid": "total_ar",
            "metric_date": "2025-01-02",
            "value": "2",
            "_metadata": '{"note": "caf\\xe9"}',
            "_line": "2",
            "_error": "Not valid UTF-8: byte 0xE9.",
        },
        {"_line": "4", "_error": "Not valid UTF-8: byte 0xFF."},
        {"_line": "7", "_error": "Not valid UTF-8: byte 0xE2."},
    ]


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_a_bad_byte_on_the_last_of_1024_lines_keeps_every_good_row(
    tmp_path, engine, catalogue, organization
):
    start = date(2020, 1, 1)
    good = "".join(
        org_line(organization, (start + timedelta(days=n)).isoformat(), n, ",") for n in range(1022)
    )
    last = org_line(organization, "2025-01-01", 1, ",").encode().replace(b",1,", b",1\xff,")
    path = tmp_path / "values.csv"
    path.write_bytes(HEADER.encode() + good.encode() + last)
    out, err, failure = run(path, "--engine", engine, "--batch-size", "100", expect_failure=True)
    assert failure.returncode == 1
    assert reported(err) == ["line 1024: Not valid UTF-8: byte 0xFF."]
    assert "1023 rows" in out and "1022 created" in out and "1 error" in out
    assert MetricValue.objects.count() == 1022


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_a_header_that_is_not_utf8_fails_the_whole_file(tmp_path, engine, catalogue, organization):
    path = tmp_path / "values.csv"
    path.write_bytes(
        HEADER.encode().replace(b"value", b"valu\xe9", 1)
        + org_line(organization, "2025-01-01", 1, ",").encode()
    )
    _, _, failure = run(path, "--engine", engine, expect_failure=True)
    assert failure.returncode == 1
    assert str(failure) == "line 1: the header is not valid UTF-8: byte 0xE9."
    assert MetricValue.objects.count() == 0


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_a_file_that_cannot_be_read_is_a_clear_error(tmp_path, engine, catalogue, organization):
    data = HEADER.encode() + org_line(organization, "2025-01-01", 1, ",").encode()
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(gzip.compress(data)[:-12])
    _, _, failure = run(truncated, "--engine", engine, expect_failure=True)
    assert failure.returncode == 1
    assert str(failure) == (
        "Cannot read the file: Compressed file ended before the end-of-stream marker was reached."
    )
    not_gzip = tmp_path / "plain.csv.gz"
    not_gzip.write_bytes(data)
    _, _, failure = run(not_gzip, "--engine", engine, expect_failure=True)
    assert failure.returncode == 1
    assert str(failure) == "Cannot read the file: Not a gzipped file (b'co')."
    assert MetricValue.objects.count() == 0


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_bad_bytes_from_stdin_and_an_oversized_csv_field_are_bad_rows(
    tmp_path, engine, catalogue, organization
):
    org = f"ORGANIZATION,{organization.uid},total_ar,,".encode()
    data = (
        HEADER.encode()
        + org + b"2025-01-01,1,,\n"  # line 2
        + org + b"2025-01-02,2,,\x80\n"  # 3: a continuation byte alone
        + org + b"2025-01-03,3,," + b"x" * 200_000 + b"\n"  # 4: over csv's field limit
        + org + b"2025-01-04,4,,\n"  # 5
    )  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(
            "import_metric_values",
            "-",
            "--format",
            "csv",
            "--engine",
            engine,
            stdin=io.TextIOWrapper(io.BytesIO(data)),
            stdout=out,
            stderr=err,
        )
    assert failure.value.returncode == 1
    assert reported(err.getvalue()) == [
        "line 3: Not valid UTF-8: byte 0x80.",
        "line 4: Not valid CSV: field larger than field limit (131072).",
    ]
    assert "2 created" in out.getvalue() and "2 error" in out.getvalue()
    assert sorted(MetricValue.objects.values_list("value", flat=True)) == [1, 4]

    path = tmp_path / "values.csv"
    path.write_bytes(HEADER.encode().replace(b"_metadata", b"_metadata," + b"x" * 200_000))
    _, _, failure = run(path, "--engine", engine, expect_failure=True)
    assert str(failure) == "The header is not valid CSV: field larger than field limit (131072)."


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_a_lone_surrogate_from_a_json_escape_reaches_errors_out_escaped(
    tmp_path, engine, catalogue, organization
):
    item = {
        "context_type": "ORGANIZATION",
        "entity_uid": str(organization.uid),
        "metric_uid": "total_ar",
        "metric_date": "2025-01-01",
        "value": 1,
    }
    path = tmp_path / "values.jsonl"
    path.write_text(
        json.dumps(item | {"timezone": "U\ud800TC"})  # ASCII text: the escape \ud800
        + "\n"
        + json.dumps(item | {"metric_date": "2025-01-02", "_metadata": {"a": "\ud83d"}})
        + "\n"
    )
    errors_out = tmp_path / "errors.csv"
    _, err, failure = run(
        path, "--engine", engine, "--errors-out", str(errors_out), expect_failure=True
    )
    assert failure.returncode == 1
    assert reported(err) == [
        "line 1: timezone: Surrogate characters are not allowed: U+D800.",
        "line 2: _metadata: _metadata must contain only JSON values.",
    ]
    cells = item | {"value": "1"}
    assert errors_file_rows(errors_out) == [
        cells
        | {
            "timezone": "U\\ud800TC",
            "_line": "1",
            "_error": "timezone: Surrogate characters are not allowed: U+D800.",
        },
        cells
        | {
            "metric_date": "2025-01-02",
            "_metadata": '{"a": "\\ud83d"}',
            "_line": "2",
            "_error": "_metadata: _metadata must contain only JSON values.",
        },
    ]
    assert MetricValue.objects.count() == 0
