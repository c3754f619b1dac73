"""The PostgreSQL fast path of ``import_metric_values``.

Per batch: the rows the shared validator (``metrics.ingestion.RowValidator``) produced
go into a temporary table with ``COPY``, and one statement does the rest — the
cross-table checks (the entity exists in the table its ``context_type`` names; the metric
exists, is active and has that context) and the write, ``INSERT … SELECT … ON CONFLICT``
on the unique key, so the database constraint decides every conflict, concurrent writers
included. The statement answers with the lines that failed a check (or conflicted, with
``on_conflict=error``) and the counts; nothing else crosses the wire.

Rows whose body failed validation are staged too (without a body): a missing entity is
reported before a bad body, as the single create's 404 comes before its 400. A key
repeated within one batch goes into a later "round" (a second COPY and statement), so
repeated keys are applied in file order, exactly as the portable writer does.

Parsing and validation run in a thread one batch ahead (``prefetch``), so Python's work
overlaps with the database's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson
from django.db import connection, transaction
from django.utils import timezone as django_timezone

from entities.models import Organization, Party, User

from .ingestion import (
    ItemResult,
    OnConflict,
    Row,
    RowValidator,
    Status,
    _batches,
    _error,
    duplicate_result,
    new_counts,
    not_found_result,
    prefetch,
    split_item,
)
from .models import MetricDefinition, MetricValue

STAGE = "metrics_ingest_stage"

_CREATE_STAGE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} (
    ln bigint NOT NULL,
    valid boolean NOT NULL,
    context_type text NOT NULL,
    entity_uid uuid NOT NULL,
    metric_id bigint,
    time_unit text,
    metric_date date,
    value numeric(24, 6),
    timezone text,
    metadata jsonb
)
"""

# UUIDv7 (PostgreSQL 15 has no generator): a v4 uuid with its first 48 bits replaced by
# the Unix time in milliseconds and the version nibble turned from 4 into 7.
_UUID7_SQL = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
    "substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) "
    "from 3) from 1 for 6), 52, 1), 53, 1), 'hex')::uuid"
)


def _statement(on_conflict: str) -> str:
    """The check-and-write statement for one round of the stage table."""
    org = Organization._meta.db_table
    party = Party._meta.db_table
    user = User._meta.db_table
    definition = MetricDefinition._meta.db_table
    values = MetricValue._meta.db_table
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
WITH checked AS (
    SELECT s.ln, s.valid, s.context_type, s.entity_uid, s.metric_id, s.time_unit,
           s.metric_date, s.value, s.metadata,
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
), written AS (
    INSERT INTO {values} AS t (uid, metric_id, context_type, entity_uid, time_unit,
        metric_date, value, timezone, metadata, batch_id, created_at, updated_at)
    SELECT {_UUID7_SQL}, metric_id, context_type, entity_uid, time_unit, metric_date,
           value, timezone, metadata, %(batch_id)s, %(now)s, %(now)s
    FROM checked c WHERE valid AND problem IS NULL AND NOT EXISTS (
        -- Rows already stored (identical ones, for update) never reach the INSERT: a
        -- read-only index probe instead of a conflict, which would lock and dirty the row.
        SELECT 1 FROM {values} e
        WHERE e.entity_uid = c.entity_uid AND e.metric_id = c.metric_id
          AND e.time_unit = c.time_unit AND e.metric_date = c.metric_date{same})
    ON CONFLICT (entity_uid, metric_id, time_unit, metric_date) {resolution}
    RETURNING t.entity_uid, t.metric_id, t.time_unit, t.metric_date, (t.xmax = 0) AS created
)
SELECT 'problem', ln, problem, 0, 0, 0 FROM checked WHERE problem IS NOT NULL
UNION ALL
SELECT 'conflict', c.ln, NULL, 0, 0, 0 FROM checked c
WHERE %(report_conflicts)s AND c.valid AND c.problem IS NULL AND NOT EXISTS (
    SELECT 1 FROM written w
    WHERE (w.entity_uid, w.metric_id, w.time_unit, w.metric_date)
        = (c.entity_uid, c.metric_id, c.time_unit, c.metric_date))
UNION ALL
SELECT 'counts', 0, NULL,
       (SELECT count(*) FROM written WHERE created),
       (SELECT count(*) FROM written WHERE NOT created),
       (SELECT count(*) FROM checked WHERE valid AND problem IS NULL)
"""  # noqa: S608 - identifiers come from model metadata; every value is a parameter


@dataclass
class StagedBatch:
    """One batch, parsed and validated, as COPY payloads ready for the database."""

    size: int
    raws: dict[int, object]
    decided: list[ItemResult] = field(default_factory=list)
    #: Lines whose body failed validation: reported unless the entity is missing.
    invalid: dict[int, tuple[str, dict]] = field(default_factory=dict)
    rounds: list[list[str]] = field(default_factory=lambda: [[]])


_EMPTY_METADATA = "{}"
_NULL = "\\N"
_NO_BODY = "\t\\N" * 6 + "\n"


def _copy_text(text: str) -> str:
    # orjson escapes control characters, so a backslash is the one character COPY's text
    # format would misread.
    return text.replace("\\", "\\\\")


def _stage(batch: list[tuple[int, object]], validator: RowValidator) -> StagedBatch:
    staged = StagedBatch(size=len(batch), raws=dict(batch))
    seen: dict[tuple, int] = {}
    rounds = staged.rounds
    fast = validator.fast
    for line, raw in batch:
        if raw.__class__ is ItemResult:
            staged.decided.append(raw)
            continue
        pending = split_item(line, raw)
        if pending.__class__ is ItemResult:
            staged.decided.append(pending)
            continue
        context_type = pending.context_type
        entity = pending.entity_text
        quick = fast(context_type, raw)
        if quick is None:
            checked = validator.validate_fully(pending)
            if checked.__class__ is not Row:
                staged.invalid[line] = (context_type, checked)
                rounds[0].append(f"{line}\tf\t{context_type}\t{entity}{_NO_BODY}")
                continue
            quick = (
                checked.definition,
                checked.time_unit,
                checked.metric_date,
                checked.value,
                checked.timezone,
                checked.metadata,
                None,
            )
        definition, time_unit, metric_date, value, zone, metadata, metadata_json = quick
        metric_id = definition.pk
        key = (entity, metric_id, time_unit, metric_date)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        if occurrence == len(rounds):
            rounds.append([])
        if metadata_json is None:
            metadata_json = orjson.dumps(metadata).decode() if metadata else _EMPTY_METADATA
        if "\\" in metadata_json:
            metadata_json = _copy_text(metadata_json)
        rounds[occurrence].append(
            f"{line}\tt\t{context_type}\t{entity}\t{metric_id}\t{time_unit}\t"
            f"{metric_date.isoformat()}\t{format(value, 'f')}\t{zone or _NULL}\t{metadata_json}\n"
        )
    return staged


def _staged_batches(rows, validator, size) -> Iterator[StagedBatch]:
    for batch in _batches(rows, size):
        yield _stage(batch, validator)


def run_postgresql(importer, rows: Iterable, validator: RowValidator, summary) -> None:
    """Import ``rows`` batch by batch; each batch is one transaction."""
    statement = _statement(importer.on_conflict)
    report_conflicts = importer.on_conflict == OnConflict.ERROR
    leftover = Status.SKIPPED if importer.on_conflict == OnConflict.SKIP else Status.UNCHANGED
    for staged in prefetch(_staged_batches(rows, validator, importer.batch_size)):
        counts = new_counts()
        errors = list(staged.decided)
        entity_missing: set[int] = set()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CREATE_STAGE)
            for lines in staged.rounds:
                if not lines:
                    continue
                cursor.execute(f"TRUNCATE {STAGE}")
                with cursor.cursor.copy(f"COPY {STAGE} FROM STDIN") as copy:
                    for start in range(0, len(lines), 2000):
                        copy.write("".join(lines[start : start + 2000]))
                cursor.execute(
                    statement,
                    {
                        "allow_inactive": importer.allow_inactive,
                        "batch_id": importer.batch_id,
                        "now": django_timezone.now(),
                        "report_conflicts": report_conflicts,
                    },
                )
                for kind, line, problem, created, updated, ok in cursor.fetchall():
                    if kind == "counts":
                        counts[Status.CREATED] += created
                        counts[Status.UPDATED] += updated
                        if not report_conflicts:
                            counts[leftover] += ok - created - updated
                    elif kind == "conflict":
                        errors.append(duplicate_result(line, None))
                    elif problem == "entity":
                        entity_missing.add(line)
                        context_type = staged.raws[line]["context_type"]
                        errors.append(not_found_result(line, context_type))
                    else:
                        errors.append(
                            _metric_changed(line, staged.raws[line], importer.allow_inactive)
                        )
        for line, (_context_type, problems) in staged.invalid.items():
            if line not in entity_missing:
                errors.append(_error(line, problems))
        counts[Status.ERROR] += len(errors)
        importer.batch_done(summary, counts, errors, staged.raws, staged.size)


def _metric_changed(line: int, raw, allow_inactive: bool) -> ItemResult:
    """The metric changed between validation and the write (deleted, deactivated): the
    full path, against the catalogue as it is now, words the error."""
    validator = RowValidator({}, allow_inactive=allow_inactive)
    pending = split_item(line, raw)
    checked = validator.validate_fully(pending)
    if isinstance(checked, Row):
        checked = {"metric_uid": ["The metric changed during the import; import this row again."]}
    return _error(line, checked)
