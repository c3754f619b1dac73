"""The PostgreSQL import's own paths: CSV records staged without dicts decide exactly what
items do; a round that loses a race to another writer is redone and still ends right;
rounds switch between the plain INSERT and the classify statement without changing a
count.

Race tests hold a row lock or an uncommitted key in a second connection, wait until the
importer is blocked on it (``pg_blocking_pids``), then commit: the importer's statement
then fails or misses exactly where a real concurrent writer would make it."""

import csv
import io
import itertools
import json
import random
import threading
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.db.models.expressions import RawSQL

from metrics.ingest.importer import Importer
from metrics.ingest.items import DUPLICATE
from metrics.ingest.postgres import _RoundWriter, _stage, _stage_records
from metrics.ingest.sources import CsvRows
from metrics.ingest.validation import RowValidator
from metrics.models import MetricDefinition, MetricValue

HEADER = ["context_type", "entity_uid", "metric_uid", "time_unit", "metric_date", "value"]
HEADER += ["timezone", "_metadata"]


# --- CSV records lane ----------------------------------------------------------------------


def _cell_corpus(organization, party, count=2000, seed=11):
    rng = random.Random(seed)
    entities = [
        ("ORGANIZATION", str(organization.uid)),
        ("ORGANIZATION", str(organization.uid).upper()),
        ("ORGANIZATION", str(organization.uid).replace("-", "")),
        ("PARTY", str(party.uid)),
        ("PARTY", str(uuid.uuid4())),
        ("TEAM", str(party.uid)),
        ("", str(party.uid)),
        ("PARTY", "not-a-uuid"),
        ("PARTY", ""),
    ]
    choices = {
        "metric_uid": ["total_ar", "party_count", "retired", "nope", "", " total_ar"],
        "time_unit": ["", "day", "month", "year", "week"],
        "metric_date": ["2025-01-01", "2025-01-02", "2025-02-01", "2025-13-01", "", "1/1/25"],
        "value": ["1", "0", "-5", "12.5", "1e3", "", "abc", "NaN", " 7", "-0", "1" * 19],
        "timezone": ["", "UTC", "Europe/Paris", "Mars/Base", " UTC"],
        "_metadata": ["", "{}", '{"a": 1}', '{"p": "C:\\\\dir"}', "[1]", "{bad", '{"n": 1e999}'],
    }
    for _ in range(count):
        context_type, entity = rng.choice(entities if rng.random() < 0.3 else entities[:4])
        row = {"context_type": context_type, "entity_uid": entity}
        for name, options in choices.items():
            row[name] = rng.choice(options[:3] if rng.random() < 0.7 else options)
        yield row


def _without_uids(rounds):
    """Staged rows without their last field, the uid."""
    return [[row[:-1] for row in rows] for rows in rounds]


def _csv(rows, header):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    buffer.write("PARTY,short,row\n")
    return buffer.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        HEADER,
        # Another order, optional columns missing, and a column the importer ignores.
        ["value", "metric_date", "_error", "entity_uid", "metric_uid", "context_type"],
    ],
    ids=["all-columns", "reordered"],
)
def test_records_lane_stages_exactly_what_items_stage(
    make_definition, total_ar, organization, party, header
):
    make_definition("party_count", context_type="PARTY", value_type="count")
    make_definition("retired", is_active=False)
    text = _csv(_cell_corpus(organization, party), header)
    catalogue = {d.uid: d for d in MetricDefinition.objects.all()}

    source = CsvRows(io.StringIO(text))
    items = list(source)
    records = list(CsvRows(io.StringIO(text)).records())
    assert [line for line, _ in items] == [line for line, _ in records]
    for size in (7, 500):
        for start in range(0, len(items), size):
            by_items = _stage(
                items[start : start + size], RowValidator(catalogue, allow_inactive=False)
            )
            by_records = _stage_records(
                records[start : start + size], RowValidator(catalogue, allow_inactive=False)
            )
            # Each stager draws its own uids (the last column); the rest must be equal.
            assert _without_uids(by_records.rounds) == _without_uids(by_items.rounds)
            assert by_records.decided == by_items.decided
            assert by_records.invalid == by_items.invalid
            for line, item in items[start : start + size]:
                assert by_records.item(line) == item
    # The corpus reaches every outcome, or the comparison proves little.
    staged = _stage(items, RowValidator(catalogue, allow_inactive=False))
    assert len(staged.rounds) > 1
    assert len(staged.decided) > 20 and len(staged.invalid) > 100
    assert sum(len(rows) for rows in staged.rounds) > 500
    uids = [row[-1] for rows in staged.rounds for row in rows]
    assert len(set(uids)) == len(uids)


# --- Races ----------------------------------------------------------------------------------


def _dsn() -> str:
    settings = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=settings["NAME"],
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    )


class Rival:
    """A second connection holding an uncommitted write; ``release_when_blocking`` commits
    it as soon as another backend waits on it (or after ``patience`` seconds, so that a
    broken test fails instead of hanging)."""

    def __init__(self):
        self.conn = psycopg.connect(_dsn())
        self.pid = self.conn.info.backend_pid
        self.blocked = threading.Event()

    def execute(self, sql, params=()):
        self.conn.execute(sql, params)

    def release_when_blocking(self, patience: float = 60.0) -> threading.Thread:
        def watch():
            with psycopg.connect(_dsn(), autocommit=True) as watcher:
                for _ in range(int(patience / 0.02)):
                    waiting = watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE %s = ANY(pg_blocking_pids(pid))",
                        (self.pid,),
                    ).fetchone()[0]
                    if waiting:
                        self.blocked.set()
                        break
                    threading.Event().wait(0.02)
            self.conn.commit()
            self.conn.close()

        thread = threading.Thread(target=watch)
        thread.start()
        return thread


def _store(definition, organization, day, value):
    return MetricValue.objects.create(
        metric=definition,
        context_type="ORGANIZATION",
        entity_uid=organization.uid,
        metric_date=day,
        value=value,
        timezone="UTC",
    )


def _line(organization, day, value):
    return f"ORGANIZATION,{organization.uid},total_ar,day,{day.isoformat()},{value},UTC,\n"


def _import(text, **options):
    return Importer(engine="postgresql", **options).run(CsvRows(io.StringIO(text)))


DAY = date(2025, 3, 1)
HEAD = ",".join(HEADER) + "\n"


def _rival_holding(definition, organization, day) -> Rival:
    """A second connection that has inserted (not committed) the key of ``day``."""
    rival = Rival()
    rival.execute(
        "INSERT INTO metrics_metricvalue (uid, metric_id, context_type, entity_uid, time_unit,"
        " metric_date, value, timezone, metadata, created_at, updated_at) VALUES"
        " (gen_random_uuid(), %s, 'ORGANIZATION', %s, 'day', %s, 5, 'UTC', '{}', now(), now())",
        (definition.pk, organization.uid, day),
    )
    return rival


@pytest.mark.parametrize("first", ["stored", "new"])
@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_key_inserted_by_another_writer_meanwhile_is_decided_by_the_constraint(
    total_ar, organization, first
):
    """``stored``: the round goes through the classify statement (its first row is stored),
    whose plain INSERT then meets the rival's key: the constraint refuses it and the round
    is redone with ON CONFLICT. ``new``: the plain INSERT of an all-new round meets it and
    the round is redone by the classify statement."""
    stored_day, raced_day, new_day = DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)
    lines = [_line(organization, raced_day, 700), _line(organization, new_day, 800)]
    if first == "stored":
        _store(total_ar, organization, stored_day, 600)
        lines.insert(0, _line(organization, stored_day, 600))
    rival = _rival_holding(total_ar, organization, raced_day)
    watcher = rival.release_when_blocking()
    summary = _import(HEAD + "".join(lines))
    watcher.join()

    assert rival.blocked.is_set()
    assert summary.races == (1 if first == "stored" else 0)
    assert summary.counts["created"] == 1
    assert summary.counts["updated"] == 1
    assert summary.counts["unchanged"] == (1 if first == "stored" else 0)
    assert summary.failed == 0
    stored = dict(MetricValue.objects.values_list("metric_date", "value"))
    assert stored == {
        **({stored_day: 600} if first == "stored" else {}),
        raced_day: 700,
        new_day: 800,
    }


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_key_inserted_meanwhile_is_a_duplicate_with_on_conflict_error(total_ar, organization):
    stored_day, raced_day = DAY, DAY + timedelta(days=1)
    _store(total_ar, organization, stored_day, 600)
    rival = _rival_holding(total_ar, organization, raced_day)
    watcher = rival.release_when_blocking()
    errors = []
    text = HEAD + _line(organization, stored_day, 600) + _line(organization, raced_day, 700)
    summary = Importer(
        engine="postgresql",
        on_conflict="error",
        on_error=lambda line, item, problems: errors.append((line, problems)),
    ).run(CsvRows(io.StringIO(text)))
    watcher.join()

    assert rival.blocked.is_set() and summary.races == 1
    assert summary.counts["error"] == 2 and summary.counts["created"] == 0
    assert errors == [(n, {"metric_date": [DUPLICATE]}) for n in (2, 3)]
    assert MetricValue.objects.get(metric_date=raced_day).value == 5


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_row_deleted_meanwhile_is_written_again_not_counted_as_updated(total_ar, organization):
    """The classify statement plans an UPDATE of a stored row that another writer deletes
    before the UPDATE reaches it: the UPDATE touches fewer rows than planned, and the round
    is redone with ON CONFLICT, which inserts the row."""
    kept_day, deleted_day = DAY, DAY + timedelta(days=1)
    _store(total_ar, organization, kept_day, 600)
    doomed = _store(total_ar, organization, deleted_day, 1)
    rival = Rival()
    rival.execute("DELETE FROM metrics_metricvalue WHERE uid = %s", (doomed.uid,))
    watcher = rival.release_when_blocking()
    text = HEAD + _line(organization, kept_day, 600) + _line(organization, deleted_day, 900)
    summary = _import(text)
    watcher.join()

    assert rival.blocked.is_set() and summary.races == 1
    assert summary.counts["unchanged"] == 1
    assert summary.counts["created"] == 1 and summary.counts["updated"] == 0
    assert MetricValue.objects.get(metric_date=deleted_day).value == 900


# --- Round switching ---------------------------------------------------------


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db
@pytest.mark.postgres
def test_rounds_alternating_new_and_stored_count_like_the_portable_engine(
    total_ar, organization, tmp_path
):
    """Batches of 5 alternate between all stored, all new and mixed, so the importer keeps
    switching between the plain INSERT and the classify statement."""
    days = [DAY + timedelta(days=n) for n in range(40)]
    pattern = itertools.cycle(["stored"] * 5 + ["new"] * 5 + ["stored", "new"] * 5)
    kinds = [next(pattern) for _ in days]
    lines = []
    for n, (day, kind) in enumerate(zip(days, kinds, strict=True)):
        if kind == "stored":
            _store(total_ar, organization, day, n if n % 3 else n + 1)  # some will update
        lines.append(_line(organization, day, n))
    text = HEAD + "".join(lines)
    before = set(MetricValue.objects.values_list("uid", "metric_date", "value", "updated_at"))

    counts = {}
    for engine in ("portable", "postgresql"):
        summary = Importer(engine=engine, batch_size=5, dry_run=True).run(
            CsvRows(io.StringIO(text))
        )
        counts[engine] = summary.counts
    assert counts["portable"] == counts["postgresql"]
    assert counts["postgresql"]["created"] == kinds.count("new")
    assert counts["postgresql"]["updated"] > 0 and counts["postgresql"]["unchanged"] > 0
    assert set(MetricValue.objects.values_list("uid", "metric_date", "value", "updated_at")) == (
        before
    )

    summary = _import(text, batch_size=5)
    assert summary.counts == counts["postgresql"]
    assert dict(MetricValue.objects.values_list("metric_date", "value")) == {
        day: n for n, day in enumerate(days)
    }


# --- Identifiers ----------------------------------------------------------------------------


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db
@pytest.mark.postgres
def test_imported_rows_get_uuid7_uids_in_file_order(total_ar, organization):
    started = time.time_ns() // 1_000_000
    _import(HEAD + "".join(_line(organization, DAY + timedelta(days=n), n) for n in range(20)))
    uids = list(MetricValue.objects.order_by("metric_date").values_list("uid", flat=True))
    assert len(uids) == 20
    # ``uuid6.uuid7`` never repeats a millisecond: each uid's is later than the last's.
    assert all(u.version == 7 and u.int >> 80 >= started for u in uids)
    assert uids == sorted(uids)


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db
@pytest.mark.postgres
def test_values_reach_the_table_exactly(make_definition, organization):
    """Values travel to the stage table as text (``format(value, "f")``, or plain digits as
    they came) and are cast there: nothing may be rounded or re-scaled on the way."""
    from metrics.services import normalize_value

    make_definition("ratio", value_type="ratio")
    texts = ["0.000001", "-123456789012.345678", "999999999999999999.999999", "-0", "7"]
    texts += ["007", "0", "+1000.5", "999999999999999999", "000000000000000001"]
    text = HEAD + "".join(
        f"ORGANIZATION,{organization.uid},ratio,day,{(DAY + timedelta(days=n)).isoformat()},"
        f"{value},,\n"
        for n, value in enumerate(texts)
    )
    summary = _import(text)
    assert summary.counts["created"] == len(texts)
    stored = dict(MetricValue.objects.values_list("metric_date", "value"))
    assert [stored[DAY + timedelta(days=n)] for n in range(len(texts))] == [
        normalize_value(value) for value in texts
    ]
    assert _import(text).counts["unchanged"] == len(texts)


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db
@pytest.mark.postgres
def test_every_staged_field_reaches_the_table_exactly(total_ar, organization, party):
    """The stage rows are made by hand in COPY's binary format: texts with backslashes,
    tabs, newlines and non-ASCII, both contexts, a default and an explicit timezone, and
    rows staged without a body (a bad value; a missing entity) in the same batch."""
    from metrics.models import MetricDefinition

    MetricDefinition.objects.create(uid="party_ar", name="P", context_type="PARTY")
    metadata = {"path": "C:\\dir\tx\ny\rz", "ü": "€ 𝄞", "n": 1.5, "list": [1, None, True]}
    rows = [
        ["ORGANIZATION", organization.uid, "total_ar", "day", "2025-03-01", "12", "", ""],
        [
            "ORGANIZATION",
            organization.uid,
            "total_ar",
            "month",
            "2025-03-01",
            "-125.000",
            "America/Argentina/Buenos_Aires",
            json.dumps(metadata),
        ],
        ["PARTY", party.uid, "party_ar", "year", "2025-01-01", "3", "", '{"a": "\\\\"}'],
        ["PARTY", party.uid, "party_ar", "day", "2025-01-02", "abc", "", ""],
        ["PARTY", uuid.uuid4(), "party_ar", "day", "2025-01-02", "abc", "", ""],
        # jsonb cannot hold U+0000: a row error, not a failed statement.
        [
            "ORGANIZATION",
            organization.uid,
            "total_ar",
            "day",
            "2025-03-09",
            "1",
            "",
            '{"a": "\\u0000"}',
        ],
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    errors = {}
    summary = Importer(
        engine="postgresql", on_error=lambda line, item, problems: errors.update({line: problems})
    ).run(CsvRows(io.StringIO(buffer.getvalue())))

    assert summary.counts["created"] == 3 and summary.counts["error"] == 3, errors
    assert list(errors[5]) == ["value"] and list(errors[6]) == ["entity_uid"]
    assert list(errors[7]) == ["_metadata"]
    stored = {
        (v.context_type, v.time_unit): (v.entity_uid, v.value, v.timezone, v.metadata)
        for v in MetricValue.objects.all()
    }
    assert stored == {
        ("ORGANIZATION", "day"): (organization.uid, Decimal(12), organization.timezone, {}),
        ("ORGANIZATION", "month"): (
            organization.uid,
            Decimal("-125"),
            "America/Argentina/Buenos_Aires",
            metadata,
        ),
        ("PARTY", "year"): (party.uid, Decimal(3), organization.timezone, {"a": "\\"}),
    }
    assert _import(buffer.getvalue()).counts == {**summary.counts, "created": 0, "unchanged": 3}


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db
@pytest.mark.postgres
def test_runs_of_dates_find_exactly_the_stored_keys(total_ar, organization, party):
    """The classify statement reads each series' stored rows in runs of close dates: dense
    dates, scattered ones, and stored neighbours the file does not name (which must be
    neither counted nor touched) end as the portable engine ends."""
    from metrics.models import MetricDefinition

    MetricDefinition.objects.create(uid="party_m", name="P", context_type="PARTY")
    MetricDefinition.objects.create(uid="party_y", name="Y", context_type="PARTY")
    rng = random.Random(5)
    dense = [DAY + timedelta(days=n) for n in range(60)]
    scattered = sorted(
        {
            date(1900 + rng.randrange(290), 1, 1) + timedelta(days=rng.randrange(365))
            for _ in range(30)
        }
        - set(dense)
    )
    months = [date(2000 + n // 12, n % 12 + 1, 1) for n in range(0, 300, 7)]
    years = [date(1950 + n, 1, 1) for n in range(0, 200, 9)]
    series = [
        ("ORGANIZATION", organization.uid, "total_ar", "day", dense + scattered),
        ("PARTY", party.uid, "party_m", "month", months),
        ("PARTY", party.uid, "party_y", "year", years),
    ]

    def stored_row(context_type, entity, metric, unit, day, value):
        MetricValue.objects.create(
            metric=MetricDefinition.objects.get(uid=metric),
            context_type=context_type,
            entity_uid=entity,
            time_unit=unit,
            metric_date=day,
            value=value,
            timezone="UTC",
        )

    lines = []
    for context_type, entity, metric, unit, days in series:
        for n, day in enumerate(days):
            kind = rng.choice(["new", "same", "changed", "neighbour"])
            if kind in ("same", "changed"):
                stored_row(context_type, entity, metric, unit, day, n if kind == "same" else n + 1)
            if kind == "neighbour":  # stored, between the file's dates, not in the file
                stored_row(context_type, entity, metric, unit, day, n)
                continue
            lines.append(f"{context_type},{entity},{metric},{unit},{day.isoformat()},{n},UTC,\n")
    rng.shuffle(lines)
    text = HEAD + "".join(lines)
    before = {v.uid: (v.value, v.updated_at) for v in MetricValue.objects.all()}

    counts = {
        (engine, size): Importer(engine=engine, batch_size=size, dry_run=True)
        .run(CsvRows(io.StringIO(text)))
        .counts
        for engine in ("portable", "postgresql")
        for size in (7, 10_000)
    }
    assert len({tuple(sorted(c.items())) for c in counts.values()}) == 1
    summary = _import(text)
    assert summary.counts == counts["postgresql", 10_000]
    assert 0 not in (
        summary.counts["created"],
        summary.counts["updated"],
        summary.counts["unchanged"],
    )
    after = {v.uid: (v.value, v.updated_at) for v in MetricValue.objects.all()}
    changed = {uid for uid in before if after[uid] != before[uid]}
    assert len(changed) == summary.counts["updated"]
    assert len(after) == len(before) + summary.counts["created"]
    assert _import(text).counts["unchanged"] == len(lines)


def _row_versions() -> dict:
    """metric_date → the row version's transaction id (changes with every write)."""
    rows = MetricValue.objects.annotate(row_version=RawSQL("xmin::text", ()))
    return dict(rows.values_list("metric_date", "row_version"))


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db
@pytest.mark.postgres
@pytest.mark.parametrize("on_conflict", ["update", "skip"])
def test_a_rerun_compares_without_writing_and_writes_where_something_changed(
    total_ar, organization, monkeypatch, on_conflict
):
    """A re-run's rounds go through the read-only comparison; a round with a changed value
    goes on to the classify statement (which, for ``update``, writes it), and the rounds
    after it return to comparing once one again has nothing to write. No other row gets a
    new version."""
    days = [DAY + timedelta(days=n) for n in range(50)]
    _import(HEAD + "".join(_line(organization, day, n) for n, day in enumerate(days)))
    versions = _row_versions()
    changed = days[25]  # the third batch of ten
    text = HEAD + "".join(
        _line(organization, day, n + (day == changed)) for n, day in enumerate(days)
    )
    statements = []
    write = _RoundWriter.write

    def recording(self, cursor):
        rows = write(self, cursor)
        statements.append(rows[-1][0])
        return rows

    monkeypatch.setattr(_RoundWriter, "write", recording)
    summary = _import(text, batch_size=10, on_conflict=on_conflict)

    if on_conflict == "update":
        assert statements == ["compared", "compared", "classified", "classified", "compared"]
        assert summary.counts["updated"] == 1 and summary.counts["unchanged"] == 49
    else:
        assert statements == ["compared"] * 5
        assert summary.counts["skipped"] == 50
    after = _row_versions()
    rewritten = {day for day in days if after[day] != versions[day]}
    assert rewritten == ({changed} if on_conflict == "update" else set())
