"""The portable writer: one batch of items, checked and applied in order, with a bounded
number of queries whatever its size (SQLite, and the bulk endpoint everywhere)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db import IntegrityError, connection, models, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone as django_timezone
from uuid6 import uuid7

from entities.permissions import writable_entity_uids
from exante.db import violated_constraint

from ..constants import METRIC_VALUE_UNIQUE_CONSTRAINT
from ..models import MetricValue
from ..selectors import entity_queryset, visible_entities
from ..services import EntityRef
from .items import (
    WRITE_DENIED,
    ItemResult,
    OnConflict,
    Pending,
    Row,
    Status,
    duplicate_result,
    error_result,
    new_counts,
    not_found_result,
    split_item,
)
from .statements import (
    CHANGE_SETS,
    VALUE_INSERT_COLUMNS,
    VALUE_KEY_COLUMNS,
    VALUE_UPDATE_COLUMNS,
    change_params,
    value_insert_sql,
)
from .validation import RowValidator


def resolve_entities(pendings: Iterable[Pending], user=None) -> dict[tuple, object]:
    """(context_type, uid) → entity, one query per context type present. With a user, only
    entities visible to it: an invisible one is simply absent, like a missing one."""
    wanted: dict[str, set[UUID]] = {}
    for pending in pendings:
        wanted.setdefault(pending.context_type, set()).add(pending.entity_uid)
    found = {}
    for context_type, uids in wanted.items():
        queryset = (
            visible_entities(context_type, user)
            if user is not None
            else entity_queryset(context_type)
        )
        for entity in queryset.filter(uid__in=uids):
            found[(context_type, entity.uid)] = entity
    return found


@dataclass(slots=True)
class _Stored:
    """A key's current state while a batch is applied: stored, planned, or both."""

    uid: UUID
    value: Decimal
    timezone: str
    metadata: dict
    stored: bool
    dirty: bool = False


def _same(state: _Stored, row: Row, zone: str) -> bool:
    return state.value == row.value and state.timezone == zone and state.metadata == row.metadata


def _existing(rows: list[Row], *, lock: bool) -> dict[tuple, _Stored]:
    """Stored rows for the keys of ``rows``: one query per 4,000 keys, whatever the spread
    of entities and dates (a row-value ``IN (VALUES …)`` on the unique index)."""
    keys = list({row.key for row in rows})
    meta = MetricValue._meta
    prep_uuid = meta.get_field("entity_uid").get_db_prep_value
    prep_date = meta.get_field("metric_date").get_db_prep_value
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in VALUE_KEY_COLUMNS)
    found = {}
    for start in range(0, len(keys), 4000):
        chunk = keys[start : start + 4000]
        params: list = []
        for entity_uid, metric_id, time_unit, metric_date in chunk:
            params += [
                prep_uuid(entity_uid, connection),
                metric_id,
                time_unit,
                prep_date(metric_date, connection),
            ]
        values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
        condition = RawSQL(  # noqa: S611 - quoted identifiers; every value is a parameter
            f"({columns}) IN (VALUES {values})", params, output_field=models.BooleanField()
        )
        queryset = MetricValue.objects.filter(condition)
        if lock:
            queryset = queryset.select_for_update()
        stored = queryset.values_list("uid", *VALUE_KEY_COLUMNS, *VALUE_UPDATE_COLUMNS)
        for uid, *key, value, zone, metadata in stored:
            found[tuple(key)] = _Stored(uid, value, zone, metadata, stored=True)
    return found


def apply_rows(
    rows: list[Row],
    results: list,
    *,
    positions: Mapping[int, int],
    on_conflict: str,
    zones: Mapping[tuple, str],
    existing: dict[tuple, _Stored],
) -> tuple[list[Row], list[_Stored]]:
    """Decide each row's status as if the rows were applied one by one, in order.

    Returns the rows to insert (one per new key, with the last accepted values) and the
    stored rows to update. ``results`` is filled at ``positions[row.index]``.
    """
    state = existing
    inserts: dict[tuple, Row] = {}
    for row in rows:
        key = row.key
        zone = row.timezone or zones[(row.context_type, row.entity_uid)]
        current = state.get(key)
        slot = positions[row.index]
        if current is None:
            uid = uuid7()
            state[key] = _Stored(uid, row.value, zone, row.metadata, stored=False)
            row.timezone = zone
            inserts[key] = row
            results[slot] = ItemResult(row.index, Status.CREATED, uid=uid)
        elif on_conflict == OnConflict.ERROR:
            results[slot] = duplicate_result(row.index, current.uid)
        elif on_conflict == OnConflict.SKIP:
            results[slot] = ItemResult(row.index, Status.SKIPPED, uid=current.uid)
        elif _same(current, row, zone):
            results[slot] = ItemResult(row.index, Status.UNCHANGED, uid=current.uid)
        else:
            current.value, current.timezone, current.metadata = row.value, zone, row.metadata
            if current.stored:
                current.dirty = True
            else:
                planned = inserts[key]
                planned.value, planned.timezone, planned.metadata = row.value, zone, row.metadata
            results[slot] = ItemResult(row.index, Status.UPDATED, uid=current.uid)
    new_rows = []
    for key, row in inserts.items():
        row_uid = state[key].uid
        new_rows.append((row_uid, row))
    updates = [stored for stored in state.values() if stored.stored and stored.dirty]
    return new_rows, updates


def _write(new_rows: list, updates: list[_Stored], *, batch_id: UUID, now: datetime) -> None:
    """Two statements whatever the number of rows (``executemany``), so the query count
    of a call does not grow with its size."""
    meta = MetricValue._meta
    prep = {field.column: field.get_db_prep_save for field in meta.local_concrete_fields}
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    stamp = prep["created_at"](now, connection)
    batch = prep["batch_id"](batch_id, connection)
    change = change_params(batch_id=batch_id)
    with connection.cursor() as cursor:
        if new_rows:
            params = []
            for uid, row in new_rows:
                cells = {
                    "uid": prep["uid"](uid, connection),
                    "metric_id": row.definition.pk,
                    "context_type": row.context_type,
                    "entity_uid": prep["entity_uid"](row.entity_uid, connection),
                    "time_unit": row.time_unit,
                    "metric_date": prep["metric_date"](row.metric_date, connection),
                    "value": prep["value"](row.value, connection),
                    "timezone": row.timezone,
                    "metadata": prep["metadata"](row.metadata, connection),
                    "batch_id": batch,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "version": 1,
                    **change,
                }
                params.append([cells[column] for column in VALUE_INSERT_COLUMNS])
            marks = ", ".join(["%s"] * len(VALUE_INSERT_COLUMNS))
            # A stored key is a lost race: the constraint refuses it and the caller re-reads.
            insert = value_insert_sql(source=f"VALUES ({marks})", conflict="error")
            cursor.executemany(insert, params)
        if updates:
            sets = ", ".join(f"{quote(c)} = %({c})s" for c in (*VALUE_UPDATE_COLUMNS, "updated_at"))
            params = [
                {
                    "value": prep["value"](stored.value, connection),
                    "timezone": stored.timezone,
                    "metadata": prep["metadata"](stored.metadata, connection),
                    "updated_at": stamp,
                    "uid": prep["uid"](stored.uid, connection),
                    **change,
                }
                for stored in updates
            ]
            update = (
                f"UPDATE {table} SET {sets}, {', '.join(CHANGE_SETS)} "  # noqa: S608
                f"WHERE {quote('uid')} = %(uid)s"
            )
            cursor.executemany(update, params)


@dataclass
class BatchOutcome:
    results: list[ItemResult]
    #: With ``all_or_nothing``: true when some item failed and nothing was written.
    rejected: bool = False

    def counts(self) -> dict[str, int]:
        counts = new_counts()
        for result in self.results:
            counts[result.status] += 1
        return counts


def ingest_portable(
    items: list[tuple[int, object]],
    *,
    validator: RowValidator,
    on_conflict: str,
    batch_id: UUID,
    user=None,
    write: bool = True,
    all_or_nothing: bool = False,
) -> BatchOutcome:
    """Apply one batch of ``(index, raw item)`` through the portable writer.

    Must run inside a transaction (the caller owns it). ``user=None`` is an operator
    command: every entity is visible and writable. ``write=False`` (a dry run) decides
    everything and writes nothing; created items then have no uid. ``all_or_nothing``:
    if any item fails, none is written and the valid ones are reported ``skipped``.
    """
    results: list[ItemResult | None] = [None] * len(items)
    positions = {}
    pendings = []
    for slot, (index, raw) in enumerate(items):
        positions[index] = slot
        if isinstance(raw, ItemResult):
            results[slot] = raw
            continue
        split = split_item(index, raw)
        if isinstance(split, ItemResult):
            results[slot] = split
        else:
            pendings.append(split)
    entities = resolve_entities(pendings, user)
    rows: list[Row] = []
    for pending in pendings:
        entity = entities.get((pending.context_type, pending.entity_uid))
        if entity is None:
            results[positions[pending.index]] = not_found_result(
                pending.index, pending.context_type
            )
            continue
        checked = validator.validate(pending)
        if isinstance(checked, Row):
            rows.append(checked)
        else:
            results[positions[pending.index]] = error_result(pending.index, checked)
    if user is not None and rows:
        wanted: dict[str, set[UUID]] = {}
        for row in rows:
            wanted.setdefault(row.context_type, set()).add(row.entity_uid)
        writable = {
            context_type: writable_entity_uids(user, entity_queryset(context_type).model, uids)
            for context_type, uids in wanted.items()
        }
        allowed = []
        for row in rows:
            if row.entity_uid in writable[row.context_type]:
                allowed.append(row)
            else:
                context = row.context_type.lower()
                results[positions[row.index]] = error_result(
                    row.index,
                    {"entity_uid": [WRITE_DENIED.format(context=context)]},
                    code="permission_denied",
                )
        rows = allowed
    zones = {key: EntityRef.of(key[0], entity).default_timezone for key, entity in entities.items()}
    lock = on_conflict == OnConflict.UPDATE and write
    for attempt in range(3):
        decided = list(results)
        existing = _existing(rows, lock=lock) if rows else {}
        # ``apply_rows`` sets a row's default timezone; copies keep a retry clean.
        fresh = [
            Row(
                r.index,
                r.context_type,
                r.entity_uid,
                r.definition,
                r.time_unit,
                r.metric_date,
                r.value,
                r.timezone,
                r.metadata,
            )
            for r in rows
        ]
        new_rows, updates = apply_rows(
            fresh,
            decided,
            positions=positions,
            on_conflict=on_conflict,
            zones=zones,
            existing=existing,
        )
        failed = any(r.status == Status.ERROR for r in decided)
        if all_or_nothing and failed:
            return BatchOutcome(_void(decided), rejected=True)
        if not write:
            return BatchOutcome(
                [
                    ItemResult(r.index, r.status, None, r.errors, r.code)
                    if r.status == Status.CREATED
                    else r
                    for r in decided
                ]
            )
        try:
            with transaction.atomic():
                _write(new_rows, updates, batch_id=batch_id, now=django_timezone.now())
        except IntegrityError as exc:
            # A concurrent writer took a key between our read and our insert: the
            # constraint decided; read again and re-decide (bounded).
            if violated_constraint(exc, MetricValue) != METRIC_VALUE_UNIQUE_CONSTRAINT:
                raise
            if attempt == 2:
                raise
            continue
        return BatchOutcome(decided)
    raise AssertionError("unreachable")


def _void(results: list[ItemResult]) -> list[ItemResult]:
    """In a rejected call nothing was written: valid items are ``skipped``, uid-less."""
    return [r if r.status == Status.ERROR else ItemResult(r.index, Status.SKIPPED) for r in results]
