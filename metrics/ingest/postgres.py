"""The PostgreSQL fast path of ``import_metric_values``.

Per batch (one transaction): the rows the shared validator (``RowValidator``) accepted —
and, without a body, those it refused — go into a temporary table with a binary ``COPY``;
then one statement per round checks and writes them:

- the cross-table checks, in SQL against the live tables (the entity exists in the table
  its ``context_type`` names; the metric exists, is active, has that context), and the
  entity's default timezone (``_checked_cte``);
- the write, by the cheapest statement the database still decides:
  ``insert_statement`` — a plain ``INSERT … SELECT`` without looking for stored keys —
  while rounds keep coming out all new (a first import); else ``classify_statement`` —
  the stored rows, read with one range scan of the unique index per run of close dates
  (``_stored_cte``), sort the round into new / stored and identical / stored and
  different, then a plain ``INSERT`` of the new and an ``UPDATE`` of the different: an
  identical row is never written (no lock, no new version, no ``updated_at`` change).
  While rounds keep coming out with nothing to write (a re-run), ``compare_statement``
  does the same reading without the write steps, and hands a round with anything to
  write on to the classify statement;
- the writes each in a savepoint. A stored key makes the unique constraint (checked by
  name) refuse the plain ``INSERT``: the round goes on to the lookup. A writer racing the
  classify statement (a key inserted, or a row deleted, between its lookup and its
  write) makes the constraint refuse it or the ``UPDATE`` miss: the round is redone by
  ``on_conflict_statement``, ``INSERT … ON CONFLICT``, which decides every key under
  the index's own locking (``ImportSummary.races`` counts these).

A statement answers only the lines that failed a check or conflicted, and counts.

Rows whose body failed validation are staged without a body: a missing entity is
reported before a bad body, as the single create's 404 comes before its 400. A key
repeated within one batch goes into a later round (a second COPY and statement), so
repeated keys are applied in file order, exactly as the portable writer does.

Parsing, validation and staging are done in a thread one batch ahead (``prefetch``), so
Python's work overlaps with the database's; CSV records are validated as cells
(``RowValidator.fast_text``) without becoming dicts. Each staged row is a tuple that
psycopg's binary ``COPY`` writes (``copy.set_types`` + ``copy.write_row``); a uuid goes as
its integer (``UuidIntDumper``), a plain-digits value as its text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone as django_timezone
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format
from uuid6 import uuid7

from exante.db import violated_constraint

from ..constants import METRIC_VALUE_UNIQUE_CONSTRAINT
from ..models import MetricValue
from .batching import batches, prefetch
from .items import (
    CONTEXT_TYPES,
    ItemResult,
    JsonText,
    OnConflict,
    Row,
    Status,
    duplicate_result,
    error_result,
    new_counts,
    not_found_result,
    parse_uuid,
    split_item,
    uuid_cache,
)
from .postgres_sql import (
    COPY_STAGE,
    PREPARE_STAGE,
    STAGE,
    STAGE_TYPES,
    VALUES_TABLE,
    classify_statement,
    compare_statement,
    insert_statement,
    on_conflict_statement,
)
from .sources import CsvRows
from .statements import change_params
from .validation import RowValidator


@dataclass
class StagedBatch:
    """One batch, parsed and validated, as rows for the stage table.

    ``read`` holds what each line was read as (an item, or a CSV record that ``item_of``
    turns into one); only lines that must be reported are ever turned.
    """

    size: int
    read: list[tuple[int, object]]
    item_of: Callable[[object], object] | None = None
    _by_line: dict[int, object] | None = None
    decided: list[ItemResult] = field(default_factory=list)
    #: Lines whose body failed validation: reported unless the entity is missing.
    invalid: dict[int, tuple[str, dict]] = field(default_factory=dict)
    #: Rows for the stage table (``STAGE_COLUMNS``); a key repeated within the batch goes
    #: into the next round, so each round holds a key at most once.
    rounds: list[list[tuple]] = field(default_factory=lambda: [[]])

    def item(self, line: int) -> object:
        if self._by_line is None:  # built only for a batch with something to report
            self._by_line = dict(self.read)
        raw = self._by_line.get(line)
        if self.item_of is not None and raw.__class__ is tuple:
            return self.item_of(raw)
        return raw


class UuidIntDumper(Dumper):
    """A ``uuid`` given as its 128-bit integer, for the stage table's binary ``COPY``.

    A staged row then holds only strings, numbers, dates and ``None``: the cyclic garbage
    collector stops tracking it, where a ``UUID`` object (tracked, one per row for the
    uid) would keep every row of the batch in each of its passes — measured at 3 µs a
    row, a third of the validating thread's time.
    """

    format = Format.BINARY
    oid = postgres.types["uuid"].oid

    def dump(self, obj: int) -> bytes:
        return obj.to_bytes(16, "big")


_EMPTY_METADATA = "{}"
#: The six body columns of a row staged without a body.
_NO_BODY = (None,) * 6


class _Stager:
    """Validation and staging of one batch: the shortcut where it is sure, else the full
    path, then each valid row's place among the rounds."""

    def __init__(self, validator: RowValidator, batch: list, item_of=None):
        self.validator = validator
        self.staged = StagedBatch(size=len(batch), read=batch, item_of=item_of)
        self.seen: dict[tuple, int] = {}
        #: metadata → its JSON text, for the metadata objects of the full path.
        self.metadata_texts: dict[int, str] = {}

    def full(self, line: int, raw: object) -> None:
        """An item the shortcut was not sure of (or a non-CSV item): the whole path."""
        staged = self.staged
        pending = split_item(line, raw)
        if pending.__class__ is ItemResult:
            staged.decided.append(pending)
            return
        quick = self.validator.fast(pending.context_type, raw)
        if quick is None:
            checked = self.validator.validate_fully(pending)
            if checked.__class__ is not Row:
                staged.invalid[line] = (pending.context_type, checked)
                entity = pending.entity_uid.int
                row = (line, False, pending.context_type, entity, *_NO_BODY, uuid7().int)
                staged.rounds[0].append(row)
                return
            quick = (
                checked.definition,
                checked.time_unit,
                checked.metric_date,
                checked.value,
                checked.timezone,
                checked.metadata,
                None,
            )
        self.add(line, pending.context_type, pending.entity_uid.int, pending.entity_text, quick)

    def add(
        self, line: int, context_type: str, entity_uid: int, entity_text: str, quick: tuple
    ) -> None:
        """Stage a valid row."""
        definition, time_unit, metric_date, value, zone, metadata, metadata_json = quick
        metric_id = definition.id  # not .pk: a property, a microsecond a row
        # The canonical text, not the UUID: it hashes in C (UUID.__hash__ is Python).
        key = (entity_text, metric_id, time_unit, metric_date)
        seen = self.seen
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        rounds = self.staged.rounds
        if occurrence == len(rounds):
            rounds.append([])
        if metadata_json is None:
            metadata_json = orjson.dumps(metadata).decode() if metadata else _EMPTY_METADATA
        if value.__class__ is not str:  # plain digits stay the text they came as
            value = format(value, "f")  # quantized to 6 places: exact, never an exponent
        rounds[occurrence].append(
            (
                line,
                True,
                context_type,
                entity_uid,
                metric_id,
                time_unit,
                metric_date,
                value,
                zone,
                metadata_json,
                uuid7().int,
            )
        )


def _stage(batch: list[tuple[int, object]], validator: RowValidator) -> StagedBatch:
    """A batch of ``(line, item)``."""
    stager = _Stager(validator, batch)
    decided = stager.staged.decided
    for line, raw in batch:
        if raw.__class__ is ItemResult:
            decided.append(raw)
        else:
            stager.full(line, raw)
    return stager.staged


def _stage_records(batch: list[tuple[int, object]], validator: RowValidator) -> StagedBatch:
    """A batch of ``(line, CSV record)`` (see ``CsvRows.records``): the same decisions
    as ``_stage`` on the items the records stand for, without building them.

    The entity fields are checked as ``split_item`` does (a known context, a UUID) and
    the rest goes to ``RowValidator.fast_text`` with the defaults ``CsvRows.item``
    implies (empty cell = not given; ``time_unit`` then ``day``); anything else is turned
    into its item and takes ``_stage``'s path.
    """
    stager = _Stager(validator, batch, CsvRows.item)
    decided = stager.staged.decided
    fast_text = validator.fast_text
    add = stager.add
    known_uuids = uuid_cache
    item = CsvRows.item
    for line, record in batch:
        if record.__class__ is ItemResult:
            decided.append(record)
            continue
        context_type, entity, metric_uid, time_unit, metric_date, value, zone, metadata = record
        if context_type in CONTEXT_TYPES:
            entity_uid = known_uuids.get(entity) or parse_uuid(entity)
            if entity_uid is not None:
                quick = fast_text(
                    context_type,
                    metric_uid or None,
                    time_unit or "day",
                    metric_date or None,
                    value or None,
                    zone or None,
                    JsonText(metadata) if metadata else None,
                )
                if quick is not None:
                    add(line, context_type, entity_uid[0].int, entity_uid[1], quick)
                    continue
        stager.full(line, item(record))
    return stager.staged


def _staged_batches(rows, validator, size) -> Iterator[StagedBatch]:
    """Batches ready to send. Runs in the prefetch thread: no database access."""
    records = getattr(rows, "records", None)
    if records is not None:
        for batch in batches(records(), size):
            yield _stage_records(batch, validator)
    else:
        for batch in batches(rows, size):
            yield _stage(batch, validator)


class _LostRace(Exception):
    """A concurrent writer changed a key between the probe and the write."""


class _RoundWriter:
    """Writes one round of the stage table with the cheapest statement that is still
    decided by the database.

    Rounds go through ``insert_statement`` while the rows keep coming out new; through
    ``compare_statement`` (read-only) while they keep coming out with nothing to write
    (a re-run); else, or when the comparison finds something to write, through
    ``classify_statement``. The writing statements run in a savepoint, and a round whose
    statement lost a race (the unique constraint, named, refused the ``INSERT``; an
    ``UPDATE`` found a row gone) is rolled back to it and redone by
    ``on_conflict_statement``. A comparison decides nothing that a write could get
    wrong: it reports rows as they are in its snapshot, as the classify statement does
    for the rows it leaves alone.
    """

    def __init__(self, importer, summary):
        on_conflict = importer.on_conflict
        self.on_conflict = on_conflict
        self.update = on_conflict == OnConflict.UPDATE
        self.insert = insert_statement()
        self.compare = compare_statement(on_conflict)
        self.classify = classify_statement(on_conflict)
        self.fallback = on_conflict_statement(on_conflict)
        self.params = {
            "allow_inactive": importer.allow_inactive,
            "batch_id": importer.batch_id,
            "report_conflicts": on_conflict == OnConflict.ERROR,
            **change_params(batch_id=importer.batch_id),
        }
        self.summary = summary
        #: Insert without probing: true while the last round held only new keys.
        self.expect_new = True
        #: Compare before writing: true while the last round had nothing to write.
        self.expect_unchanged = True
        self.statistics_checked = False

    def write(self, cursor) -> list[tuple]:
        """→ the answering statement's rows, each prefixed with its name (``inserted``,
        ``compared``, ``classified``, ``on_conflict``): their ``counts`` rows differ (a
        comparison's read like a classification that wrote nothing)."""
        params = {**self.params, "now": django_timezone.now()}
        if self.expect_new:
            try:
                with transaction.atomic():
                    cursor.execute(self.insert, params)
                    return [("inserted", *row) for row in cursor.fetchall()]
            except IntegrityError as exc:
                if violated_constraint(exc, MetricValue) != METRIC_VALUE_UNIQUE_CONSTRAINT:
                    raise
                self.expect_new = False
        self._ensure_statistics(cursor)
        if self.expect_unchanged:
            cursor.execute(self.compare, params)
            rows = cursor.fetchall()
            for kind, _line, _problem, new, _zero, different, _stored in rows:
                if kind == "counts" and (new or (different and self.update)):
                    self.expect_unchanged = False
                    break
            else:
                return [("compared", *row) for row in rows]
        try:
            with transaction.atomic():
                cursor.execute(self.classify, params)
                rows = cursor.fetchall()
                for kind, _line, _problem, created, updated, planned, stored in rows:
                    if kind == "counts":
                        if updated != planned:
                            raise _LostRace
                        self.expect_new = stored == 0
                        self.expect_unchanged = created == updated == 0
                return [("classified", *row) for row in rows]
        except IntegrityError as exc:
            if violated_constraint(exc, MetricValue) != METRIC_VALUE_UNIQUE_CONSTRAINT:
                raise
        except _LostRace:
            pass
        self.summary.races += 1
        cursor.execute(self.fallback, params)
        return [("on_conflict", *row) for row in cursor.fetchall()]

    def _ensure_statistics(self, cursor) -> None:
        """``ANALYZE`` the values table once per run if it has no statistics yet.

        Without them the planner cannot tell the unique index from the (metric, unit,
        date) one for the lookup of stored rows, picks the smaller, and each scan walks
        every entity of that date: 30× slower. Autovacuum analyzes a table only a while
        after a bulk load (or never, where it is off), and PostgreSQL's own advice for
        bulk loads is to ``ANALYZE`` (it samples a bounded number of rows; a non-owner
        gets a warning, not an error).
        """
        if self.statistics_checked:
            return
        self.statistics_checked = True
        cursor.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename = %s AND attname = 'entity_uid')",
            [VALUES_TABLE],
        )
        if cursor.fetchone()[0]:
            # The columns the probe compares on: a fraction of the work of the whole row.
            cursor.execute(
                f"ANALYZE {VALUES_TABLE} (entity_uid, metric_id, time_unit, metric_date)"
            )


def run_postgresql(importer, rows: Iterable, validator: RowValidator, summary) -> None:
    """Import ``rows`` batch by batch; each batch is one transaction."""
    writer = _RoundWriter(importer, summary)
    batches_ahead = _staged_batches(rows, validator, importer.batch_size)
    with closing(prefetch(batches_ahead)) as staged_batches:
        for staged in staged_batches:
            _write_batch(staged, writer, importer, summary)


def _write_batch(staged: StagedBatch, writer: _RoundWriter, importer, summary) -> None:
    """One batch, one transaction: stage each round, write it, report."""
    on_conflict = importer.on_conflict
    leftover = Status.SKIPPED if on_conflict == OnConflict.SKIP else Status.UNCHANGED
    counts = new_counts()
    errors = list(staged.decided)
    entity_missing: set[int] = set()
    with transaction.atomic(), connection.cursor() as cursor:
        # By type ``None``: only ``set_types`` finds it; parameters keep psycopg's dumpers.
        cursor.cursor.adapters.register_dumper(None, UuidIntDumper)
        for number, rows in enumerate(round_ for round_ in staged.rounds if round_):
            cursor.execute(PREPARE_STAGE if number == 0 else f"TRUNCATE {STAGE}")
            with cursor.cursor.copy(COPY_STAGE) as copy:
                copy.set_types(STAGE_TYPES)  # the uuid columns dumped by ``UuidIntDumper``
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
            for statement, kind, line, problem, n1, n2, n3, n4 in writer.write(cursor):
                if kind == "counts":
                    counts[Status.CREATED] += n1
                    if statement in ("classified", "compared"):
                        # n2 updated, n4 stored: the stored rows not updated were left
                        # alone (unchanged or skipped), or are conflicts.
                        counts[Status.UPDATED] += n2
                        if on_conflict != OnConflict.ERROR:
                            counts[leftover] += n4 - n2
                    elif statement == "on_conflict":
                        counts[Status.UPDATED] += n2
                        if on_conflict != OnConflict.ERROR:
                            counts[leftover] += n3 - n1 - n2
                elif kind == "conflict":
                    errors.append(duplicate_result(line, None))
                elif problem == "entity":
                    entity_missing.add(line)
                    context_type = staged.item(line)["context_type"]
                    errors.append(not_found_result(line, context_type))
                else:
                    errors.append(_metric_changed(line, staged.item(line), importer.allow_inactive))
    for line, (_context_type, problems) in staged.invalid.items():
        if line not in entity_missing:
            errors.append(error_result(line, problems))
    counts[Status.ERROR] += len(errors)
    reported = {result.index: staged.item(result.index) for result in errors}
    importer.batch_done(summary, counts, errors, reported, staged.size)


def _metric_changed(line: int, raw, allow_inactive: bool) -> ItemResult:
    """The metric changed between validation and the write (deleted, deactivated): the
    full path, against the catalogue as it is now, words the error."""
    validator = RowValidator({}, allow_inactive=allow_inactive)
    pending = split_item(line, raw)
    checked = validator.validate_fully(pending)
    if isinstance(checked, Row):
        checked = {"metric_uid": ["The metric changed during the import; import this row again."]}
    return error_result(line, checked)
