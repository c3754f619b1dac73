"""The PostgreSQL fast path of ``import_metric_values``.

Per batch (one transaction): the rows the shared validator (``metrics.ingestion.
RowValidator``) accepted — and, without a body, those it refused — go into a temporary
table with a binary ``COPY``; then one statement per round checks and writes them:

- the cross-table checks, in SQL against the live tables (the entity exists in the table
  its ``context_type`` names; the metric exists, is active, has that context), and the
  entity's default timezone (``_checked_cte``);
- the write, by the cheapest statement the database still decides:
  ``_insert_statement`` — a plain ``INSERT … SELECT`` without looking for stored keys —
  while rounds keep coming out all new (a first import); else ``_classify_statement`` —
  the stored rows, read with one range scan of the unique index per run of close dates
  (``_stored_cte``), sort the round into new / stored and identical / stored and
  different, then a plain ``INSERT`` of the new and an ``UPDATE`` of the different: an
  identical row is never written (no lock, no new version, no ``updated_at`` change).
  While rounds keep coming out with nothing to write (a re-run), ``_compare_statement``
  does the same reading without the write steps, and hands a round with anything to
  write on to the classify statement;
- the writes each in a savepoint. A stored key makes the unique constraint (checked by
  name) refuse the plain ``INSERT``: the round goes on to the lookup. A writer racing the
  classify statement (a key inserted, or a row deleted, between its lookup and its
  write) makes the constraint refuse it or the ``UPDATE`` miss: the round is redone by
  ``_on_conflict_statement``, ``INSERT … ON CONFLICT``, which decides every key under
  the index's own locking (``ImportSummary.races`` counts these).

A statement answers only the lines that failed a check or conflicted, and counts.

Rows whose body failed validation are staged without a body: a missing entity is
reported before a bad body, as the single create's 404 comes before its 400. A key
repeated within one batch goes into a later round (a second COPY and statement), so
repeated keys are applied in file order, exactly as the portable writer does.

Parsing, validation and the COPY payload are made in a thread one batch ahead
(``prefetch``), so Python's work overlaps with the database's; CSV records are validated
as cells (``RowValidator.fast_text``) without becoming dicts, and each staged row is
joined from byte strings that repeat down a file (entity, metric and date, timezone,
metadata), memoised, in COPY's binary format (a plain-digits value goes as its text).
"""

from __future__ import annotations

import gc
import os
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone as django_timezone

from entities.models import Organization, Party, User
from exante.db import violated_constraint

from .constants import METRIC_VALUE_UNIQUE_CONSTRAINT, TimeUnit
from .ingestion import (
    _CONTEXT_TYPES,
    CsvRows,
    ItemResult,
    JsonText,
    OnConflict,
    Row,
    RowValidator,
    Status,
    _batches,
    _error,
    _parse_uuid,
    _uuid_cache,
    duplicate_result,
    new_counts,
    not_found_result,
    prefetch,
    split_item,
)
from .models import MetricDefinition, MetricValue

# Named apart from the earlier stage table (another shape), which a pooled server
# connection could still hold.
STAGE = "metrics_ingest_stage_v2"

_STAGE_COLUMNS = (
    "ln",
    "valid",
    "context_type",
    "entity_uid",
    "metric_id",
    "time_unit",
    "metric_date",
    "value",
    "timezone",
    "metadata",
    "uid",
)
# Binary: half the server's work of the text format (no uuid, date or integer text to
# parse), the bottleneck of a re-import. Made here (``_Stager``), not by psycopg's
# formatter, which costs three times as much per row.
_COPY = f"COPY {STAGE} ({', '.join(_STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

_CREATE_STAGE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} (
    ln bigint NOT NULL,
    valid boolean NOT NULL,
    context_type text NOT NULL,
    entity_uid uuid NOT NULL,
    metric_id bigint,
    time_unit text,
    metric_date date,
    -- Text, made numeric and jsonb by the statement.
    value text,
    timezone text,
    metadata text,
    uid uuid NOT NULL
)
"""

# Created once per connection (temporary tables are per session), emptied per round.
_PREPARE_STAGE = f"{_CREATE_STAGE}; TRUNCATE {STAGE}"


def _checked_cte() -> str:
    """The cross-table checks of every staged row, and the default timezone.

    ``problem``: ``entity`` (no such entity in the table its context names), ``metric``
    (the metric is gone, has another context, or is inactive), or NULL.
    """
    org = Organization._meta.db_table
    party = Party._meta.db_table
    user = User._meta.db_table
    definition = MetricDefinition._meta.db_table
    return f"""
checked AS (
    SELECT s.ln, s.valid, s.uid, s.context_type, s.entity_uid, s.metric_id, s.time_unit,
           s.metric_date, s.value::numeric(24, 6) AS value, s.metadata::jsonb AS metadata,
           COALESCE(s.timezone, CASE s.context_type
               WHEN 'PARTY' THEN po.timezone
               WHEN 'ORGANIZATION' THEN COALESCE(NULLIF(o.timezone, ''), 'UTC')
               ELSE COALESCE(NULLIF(u.timezone, ''), 'UTC') END) AS timezone,
           CASE
               WHEN o.id IS NULL AND p.id IS NULL AND u.id IS NULL THEN 'entity'
               WHEN NOT s.valid THEN NULL
               WHEN d.id IS NULL OR d.context_type <> s.context_type
                    OR NOT (d.is_active OR %(allow_inactive)s) THEN 'metric'
           END AS problem
    FROM {STAGE} s
    LEFT JOIN {org} o ON s.context_type = 'ORGANIZATION' AND o.uid = s.entity_uid
    LEFT JOIN {party} p ON s.context_type = 'PARTY' AND p.uid = s.entity_uid
    LEFT JOIN {org} po ON po.id = p.organization_id
    LEFT JOIN {user} u ON s.context_type = 'USER' AND u.uid = s.entity_uid
    LEFT JOIN {definition} d ON d.id = s.metric_id
)"""  # noqa: S608 - identifiers come from model metadata; every value is a parameter


_VALUES = MetricValue._meta.db_table
_INSERT_INTO = f"""INSERT INTO {_VALUES} (uid, metric_id, context_type, entity_uid, time_unit,
        metric_date, value, timezone, metadata, batch_id, created_at, updated_at)"""
_INSERT_VALUES = """SELECT uid, metric_id, context_type, entity_uid, time_unit,
           metric_date, value, timezone, metadata, %(batch_id)s, %(now)s, %(now)s"""

#: Every statement answers rows of (kind, line, problem, n1, n2, n3, n4): ``problem`` rows
#: (a line that failed a cross-table check), ``conflict`` rows (a line whose key is stored,
#: with ``on_conflict=error``) and one ``counts`` row, whose numbers depend on the statement.
_PROBLEMS = "SELECT 'problem', ln, problem, 0, 0, 0, 0 FROM checked WHERE problem IS NOT NULL"


def _insert_statement() -> str:
    """Plain ``INSERT … SELECT`` of every checked row, without looking for stored keys.

    The cheapest write (no index probe before the insert, no speculative insertion), for
    rounds that are expected to be new: a stored key anywhere in the round makes the unique
    index refuse the whole statement, and the round is redone by ``_classify_statement``.
    counts: (created).
    """
    return f"""
WITH {_checked_cte()}, written AS (
    {_INSERT_INTO}
    {_INSERT_VALUES}
    FROM checked WHERE valid AND problem IS NULL
)
{_PROBLEMS}
UNION ALL
SELECT 'counts', 0, NULL, (SELECT count(*) FROM checked WHERE valid AND problem IS NULL), 0, 0, 0
"""  # noqa: S608


#: A run of consecutive dates of one series, read with one range scan of the unique index,
#: spans at most this many steps of its time unit (``_stored_cte``).
_RUN_STEPS = 16
#: Days a step of each time unit spans at most (a month, 31; a year, 366).
_UNIT_DAYS = f"""CASE time_unit WHEN '{TimeUnit.DAY}' THEN 1 WHEN '{TimeUnit.MONTH}' THEN 31
    ELSE 366 END"""
_STORED_COLUMNS = (
    "e.uid, e.entity_uid, e.metric_id, e.time_unit, e.metric_date, e.value, e.timezone, e.metadata"
)


def _stored_cte() -> str:
    """The stored rows of the round's keys, and some of their neighbours.

    A descent of the unique index costs several times as much as reading the entry next to
    the one before, and a file repeats each (entity, metric, time unit) series over many
    dates. So the round's keys are grouped into runs — one series, dates within the same
    window of ``_RUN_STEPS`` steps of its unit — and each run is read as one range scan
    from its first date to its last: a file of consecutive dates costs one descent per
    run, not per row, and scattered dates cost one each (a run of one). The price: a run
    also reads the stored rows between its dates that the file does not name — at most
    ``_RUN_STEPS`` per run, so a file that samples a dense series sparsely (one date in
    ten, say) reads up to that many rows for each of its own. 16 steps keep that bound
    low and cost a 20-day batch of a daily series 2 or 3 descents instead of 20 (32 steps
    measured 2% faster on such a file, 8 steps 7% slower). ``OFFSET 0`` keeps each scan
    in its loop (an index scan per run), whatever the planner guesses of the stage table,
    which has no statistics.
    """
    return f"""
runs AS MATERIALIZED (
    SELECT entity_uid, metric_id, time_unit, min(metric_date) AS low, max(metric_date) AS high
    FROM {STAGE} WHERE valid
    GROUP BY entity_uid, metric_id, time_unit,
             (metric_date - DATE '2000-01-01') / ({_RUN_STEPS} * {_UNIT_DAYS})
), stored AS MATERIALIZED (
    SELECT e.* FROM runs r CROSS JOIN LATERAL (
        SELECT {_STORED_COLUMNS} FROM {_VALUES} e
        WHERE e.entity_uid = r.entity_uid AND e.metric_id = r.metric_id
          AND e.time_unit = r.time_unit AND e.metric_date BETWEEN r.low AND r.high
        OFFSET 0) e
)"""  # noqa: S608 - identifiers come from model metadata


def _classify_statement(on_conflict: str) -> str:
    """Looking up the stored rows (``_stored_cte``) sorts the round into new, stored and
    identical, stored and different; then a plain ``INSERT`` of the new rows and (for
    ``update``) an ``UPDATE`` of the different ones. Identical rows are never written.

    Both writes trust a snapshot, so a concurrent writer can make them wrong: a key
    inserted meanwhile makes the unique index refuse the ``INSERT`` (the constraint
    decides), a row deleted meanwhile makes the ``UPDATE`` touch fewer rows than planned
    (reported, and compared by the caller). Either way the round is redone by
    ``_on_conflict_statement``. counts: (created, updated, planned updates, stored).
    """
    update = on_conflict == OnConflict.UPDATE
    report = on_conflict == OnConflict.ERROR
    updated = (
        f"""UPDATE {_VALUES} AS t SET value = m.value, timezone = m.timezone,
        metadata = m.metadata, updated_at = %(now)s
    FROM matched m WHERE m.stored IS NOT NULL AND NOT m.same AND t.uid = m.stored
    RETURNING 1"""  # noqa: S608 - identifiers from model metadata; values are parameters
        if update
        else "SELECT 1 WHERE false"
    )
    conflicts = (
        "\nUNION ALL\nSELECT 'conflict', ln, NULL, 0, 0, 0, 0 FROM matched WHERE stored IS NOT NULL"
        if report
        else ""
    )
    planned = "count(*) FILTER (WHERE stored IS NOT NULL AND NOT same)" if update else "0"
    return f"""
WITH {_checked_cte()}, {_stored_cte()}, matched AS (
    SELECT c.ln, c.uid, c.context_type, c.entity_uid, c.metric_id, c.time_unit, c.metric_date,
           c.value, c.timezone, c.metadata, e.uid AS stored,
           (e.value = c.value AND e.timezone = c.timezone AND e.metadata = c.metadata) AS same
    FROM checked c
    LEFT JOIN stored e ON e.entity_uid = c.entity_uid AND e.metric_id = c.metric_id
        AND e.time_unit = c.time_unit AND e.metric_date = c.metric_date
    WHERE c.valid AND c.problem IS NULL
), written AS (
    {_INSERT_INTO}
    {_INSERT_VALUES}
    FROM matched WHERE stored IS NULL
), updated AS (
    {updated}
)
{_PROBLEMS}{conflicts}
UNION ALL
SELECT 'counts', 0, NULL, count(*) FILTER (WHERE stored IS NULL), (SELECT count(*) FROM updated),
       {planned}, count(*) FILTER (WHERE stored IS NOT NULL)
FROM matched
"""  # noqa: S608


def _compare_statement(on_conflict: str) -> str:
    """Read-only: what ``_classify_statement`` would find, without its writes — for the
    round of a re-run, where nothing is new or different and the write steps would only
    walk the round again. Rows that failed a check, conflicts (``error``) and counts:
    (0, 0, stored and different, stored), plus whether any row is new; the caller runs
    ``_classify_statement`` when there is anything to write.
    """
    conflicts = (
        "\nUNION ALL\nSELECT 'conflict', ln, NULL, 0, 0, 0, 0 FROM matched WHERE stored"
        if on_conflict == OnConflict.ERROR
        else ""
    )
    return f"""
WITH {_checked_cte()}, {_stored_cte()}, matched AS (
    SELECT c.ln, e.uid IS NOT NULL AS stored,
           (e.value = c.value AND e.timezone = c.timezone AND e.metadata = c.metadata) AS same
    FROM checked c
    LEFT JOIN stored e ON e.entity_uid = c.entity_uid AND e.metric_id = c.metric_id
        AND e.time_unit = c.time_unit AND e.metric_date = c.metric_date
    WHERE c.valid AND c.problem IS NULL
)
{_PROBLEMS}{conflicts}
UNION ALL
SELECT 'counts', 0, NULL, count(*) FILTER (WHERE NOT stored), 0,
       count(*) FILTER (WHERE stored AND NOT same), count(*) FILTER (WHERE stored)
FROM matched
"""  # noqa: S608


def _on_conflict_statement(on_conflict: str) -> str:
    """The race-proof form: ``INSERT … ON CONFLICT`` decides every key under the unique
    index's own locking. Slower (speculative insertion, a result row per write), so only
    for a round that lost a race in ``_classify_statement``.
    counts: (created, updated, checked rows).
    """
    if on_conflict == OnConflict.UPDATE:
        # Identical rows are left alone: no new tuple, no updated_at change ("unchanged").
        resolution = """DO UPDATE SET value = EXCLUDED.value, timezone = EXCLUDED.timezone,
                metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at
            WHERE (t.value, t.timezone, t.metadata)
                IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.timezone, EXCLUDED.metadata)"""
        same = """
          AND e.value = c.value AND e.timezone = c.timezone AND e.metadata = c.metadata"""
    else:
        resolution = "DO NOTHING"
        same = ""
    return f"""
WITH {_checked_cte()}, written AS (
    INSERT INTO {_VALUES} AS t (uid, metric_id, context_type, entity_uid, time_unit,
        metric_date, value, timezone, metadata, batch_id, created_at, updated_at)
    {_INSERT_VALUES}
    FROM checked c WHERE valid AND problem IS NULL AND NOT EXISTS (
        -- Rows already stored (identical ones, for update) never reach the INSERT: a
        -- read-only probe instead of a conflict, which would lock and dirty the row.
        SELECT 1 FROM {_VALUES} e
        WHERE e.entity_uid = c.entity_uid AND e.metric_id = c.metric_id
          AND e.time_unit = c.time_unit AND e.metric_date = c.metric_date{same})
    ON CONFLICT (entity_uid, metric_id, time_unit, metric_date) {resolution}
    RETURNING t.entity_uid, t.metric_id, t.time_unit, t.metric_date, (t.xmax = 0) AS created
)
{_PROBLEMS}
UNION ALL
SELECT 'conflict', c.ln, NULL, 0, 0, 0, 0 FROM checked c
WHERE %(report_conflicts)s AND c.valid AND c.problem IS NULL AND NOT EXISTS (
    SELECT 1 FROM written w
    WHERE (w.entity_uid, w.metric_id, w.time_unit, w.metric_date)
        = (c.entity_uid, c.metric_id, c.time_unit, c.metric_date))
UNION ALL
SELECT 'counts', 0, NULL,
       (SELECT count(*) FROM written WHERE created),
       (SELECT count(*) FROM written WHERE NOT created),
       (SELECT count(*) FROM checked WHERE valid AND problem IS NULL), 0
"""  # noqa: S608


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
    #: Rows for the stage table (``_STAGE_COLUMNS``), each in COPY's binary format; a key
    #: repeated within the batch goes into the next round, so each round holds a key at
    #: most once. ``encode`` joins each round into one payload.
    rounds: list[list[bytes]] = field(default_factory=lambda: [[]])
    payloads: list[bytes] = field(default_factory=list)

    def encode(self) -> StagedBatch:
        """Join each round's rows into the bytes one ``COPY`` sends, so that the writer
        thread only sends."""
        self.payloads = [
            b"".join((_COPY_HEADER, *rows, _COPY_TRAILER)) for rows in self.rounds if rows
        ]
        self.rounds = []
        return self

    def item(self, line: int) -> object:
        if self._by_line is None:  # built only for a batch with something to report
            self._by_line = dict(self.read)
        raw = self._by_line.get(line)
        if self.item_of is not None and raw.__class__ is list:
            return self.item_of(raw)
        return raw


_EMPTY_METADATA = "{}"

# COPY's binary format: a signature, flags and header extension length (both 0); each row
# a field count, then each field as its length (-1: NULL) and its bytes; -1 to end.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_ROW_HEAD = struct.Struct(">hiq").pack  # field count, then ``ln`` (an int8)
_FIELD_COUNT = len(_STAGE_COLUMNS)
_NULL = b"\xff\xff\xff\xff"
_VALID = b"\x00\x00\x00\x01\x01"
_INVALID = b"\x00\x00\x00\x01\x00"
_UUID_LENGTH = b"\x00\x00\x00\x10"
_LENGTH = struct.Struct(">i").pack
_INT8 = struct.Struct(">iq").pack
_DATE = struct.Struct(">ii").pack
_POSTGRES_EPOCH = date(2000, 1, 1)
#: The six body columns of a row staged without a body.
_NO_BODY = _NULL * 6


def _text_field(text: str) -> bytes:
    data = text.encode()
    return _LENGTH(len(data)) + data


# Encoded fields that repeat down a file, each a pure function of its key, kept across
# batches (and runs; each is emptied past 100,000 entries of a few dozen bytes):
# (context_type, entity text) → those two fields; (metric id, time unit, date) → those
# three; (timezone, metadata JSON) → those two.
_entity_fields: dict[tuple, bytes] = {}
_metric_fields: dict[tuple, bytes] = {}
_tail_fields: dict[tuple, bytes] = {}
_ENCODED = (_entity_fields, _metric_fields, _tail_fields)


_VERSION_7 = bytes(0x70 | (byte & 0x0F) for byte in range(256))
_VARIANT = bytes(0x80 | (byte & 0x3F) for byte in range(256))


def _uuid7_block(count: int) -> bytes:
    """``count`` UUIDv7s (RFC 9562) end to end, 16 bytes each: the Unix time in ms, then
    74 random bits around the version and variant — the layout ``uuid6.uuid7`` gives the
    portable writer, made for a whole batch at once (a fifth of a microsecond a row,
    against over a microsecond for the same in SQL)."""
    block = bytearray(os.urandom(16 * count))
    stamp = (time.time_ns() // 1_000_000).to_bytes(6, "big")
    for offset in range(6):
        block[offset::16] = stamp[offset : offset + 1] * count
    block[6::16] = block[6::16].translate(_VERSION_7)
    block[8::16] = block[8::16].translate(_VARIANT)
    return bytes(block)


class _Stager:
    """Validation and staging of one batch: the shortcut where it is sure, else the full
    path, then each valid row's place among the rounds, as a row of binary COPY."""

    def __init__(self, validator: RowValidator, batch: list, item_of=None):
        self.validator = validator
        size = len(batch)
        self.staged = StagedBatch(size=size, read=batch, item_of=item_of)
        self.seen: dict[tuple, int] = {}
        # One uid per line, whether or not it ends up inserted.
        self.uids = _uuid7_block(size)
        self.next_uid = 0
        for memo in _ENCODED:
            if len(memo) > 100_000:
                memo.clear()

    def uid(self) -> bytes:
        start = self.next_uid
        self.next_uid = start + 16
        return self.uids[start : start + 16]

    def entity(self, context_type: str, entity_text: str) -> bytes:
        """The ``context_type`` and ``entity_uid`` fields."""
        key = (context_type, entity_text)
        fields = _entity_fields.get(key)
        if fields is None:
            fields = _text_field(context_type) + _UUID_LENGTH + UUID(entity_text).bytes
            _entity_fields[key] = fields
        return fields

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
                staged.rounds[0].append(
                    b"".join(
                        (
                            _ROW_HEAD(_FIELD_COUNT, 8, line),
                            _INVALID,
                            self.entity(pending.context_type, pending.entity_text),
                            _NO_BODY,
                            _UUID_LENGTH,
                            self.uid(),
                        )
                    )
                )
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
        self.add(line, pending.context_type, pending.entity_text, quick)

    def add(self, line: int, context_type: str, entity_text: str, quick: tuple) -> None:
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
        entity = _entity_fields.get((context_type, entity_text))
        if entity is None:
            entity = self.entity(context_type, entity_text)
        head = key[1:]  # metric_id, time_unit, metric_date
        metric = _metric_fields.get(head)
        if metric is None:
            days = (metric_date - _POSTGRES_EPOCH).days
            metric = _INT8(8, metric_id) + _text_field(time_unit) + _DATE(4, days)
            _metric_fields[head] = metric
        if metadata_json is None:
            metadata_json = orjson.dumps(metadata).decode() if metadata else _EMPTY_METADATA
        tail = _tail_fields.get((zone, metadata_json))
        if tail is None:
            tail = (_NULL if zone is None else _text_field(zone)) + _text_field(metadata_json)
            _tail_fields[(zone, metadata_json)] = tail
        if value.__class__ is not str:  # plain digits stay the text they came as
            value = format(value, "f")  # quantized to 6 places: exact, never an exponent
        value = value.encode()
        start = self.next_uid
        self.next_uid = start + 16
        rounds[occurrence].append(
            b"".join(
                (
                    _ROW_HEAD(_FIELD_COUNT, 8, line),
                    _VALID,
                    entity,
                    metric,
                    _LENGTH(len(value)),
                    value,
                    tail,
                    _UUID_LENGTH,
                    self.uids[start : start + 16],
                )
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
    known_uuids = _uuid_cache
    item = CsvRows.item
    for line, record in batch:
        if record.__class__ is ItemResult:
            decided.append(record)
            continue
        context_type, entity, metric_uid, time_unit, metric_date, value, zone, metadata = record
        if context_type in _CONTEXT_TYPES:
            entity_uid = known_uuids.get(entity) or _parse_uuid(entity)
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
                    add(line, context_type, entity_uid[1], quick)
                    continue
        stager.full(line, item(record))
    return stager.staged


def _staged_batches(rows, validator, size) -> Iterator[StagedBatch]:
    """Batches ready to send. Runs in the prefetch thread: no database access."""
    records = getattr(rows, "records", None)
    if records is not None:
        for batch in _batches(records(), size):
            yield _stage_records(batch, validator).encode()
    else:
        for batch in _batches(rows, size):
            yield _stage(batch, validator).encode()


class _LostRace(Exception):
    """A concurrent writer changed a key between the probe and the write."""


class _RoundWriter:
    """Writes one round of the stage table with the cheapest statement that is still
    decided by the database.

    Rounds go through ``_insert_statement`` while the rows keep coming out new; through
    ``_compare_statement`` (read-only) while they keep coming out with nothing to write
    (a re-run); else, or when the comparison finds something to write, through
    ``_classify_statement``. The writing statements run in a savepoint, and a round whose
    statement lost a race (the unique constraint, named, refused the ``INSERT``; an
    ``UPDATE`` found a row gone) is rolled back to it and redone by
    ``_on_conflict_statement``. A comparison decides nothing that a write could get
    wrong: it reports rows as they are in its snapshot, as the classify statement does
    for the rows it leaves alone.
    """

    def __init__(self, importer, summary):
        on_conflict = importer.on_conflict
        self.on_conflict = on_conflict
        self.update = on_conflict == OnConflict.UPDATE
        self.insert = _insert_statement()
        self.compare = _compare_statement(on_conflict)
        self.classify = _classify_statement(on_conflict)
        self.fallback = _on_conflict_statement(on_conflict)
        self.params = {
            "allow_inactive": importer.allow_inactive,
            "batch_id": importer.batch_id,
            "report_conflicts": on_conflict == OnConflict.ERROR,
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
            [_VALUES],
        )
        if cursor.fetchone()[0]:
            # The columns the probe compares on: a fraction of the work of the whole row.
            cursor.execute(f"ANALYZE {_VALUES} (entity_uid, metric_id, time_unit, metric_date)")


@contextmanager
def _tuned_interpreter():
    """Two interpreter settings for the length of a run, then restored.

    - The thread switch interval: the writer thread, back from each database round trip,
      waits for the validating thread to hand over the GIL — up to 5 ms by default, a few
      times per batch: over a tenth of a run's time. 0.5 ms keeps it short.
    - The cyclic collector's first threshold: a batch keeps tens of thousands of tuples
      alive, so the default (700 allocations) runs a full collection over everything the
      process holds every few batches: a third of the validating thread's time. What a
      batch allocates is freed by reference counting (nothing here makes cycles); the
      collector still runs, every 100,000 allocations.
    """
    interval = sys.getswitchinterval()
    thresholds = gc.get_threshold()
    sys.setswitchinterval(0.0005)
    gc.set_threshold(100_000, *thresholds[1:])
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)


def run_postgresql(importer, rows: Iterable, validator: RowValidator, summary) -> None:
    """Import ``rows`` batch by batch; each batch is one transaction."""
    with _tuned_interpreter():
        _run(importer, rows, validator, summary)


def _run(importer, rows: Iterable, validator: RowValidator, summary) -> None:
    writer = _RoundWriter(importer, summary)
    batches = _staged_batches(rows, validator, importer.batch_size)
    with closing(prefetch(batches)) as staged_batches:
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
        for number, payload in enumerate(staged.payloads):
            # One round trip: each is a thread switch away from the validator's.
            cursor.execute(_PREPARE_STAGE if number == 0 else f"TRUNCATE {STAGE}")
            with cursor.cursor.copy(_COPY) as copy:
                copy.write(payload)
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
            errors.append(_error(line, problems))
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
    return _error(line, checked)
