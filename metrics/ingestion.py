"""Bulk ingestion: the one path by which many metric values enter the table at once.

The bulk endpoint (``POST /api/metrics/values/bulk``), ``manage.py import_metric_values``
and the demo loader all come through here, and every row gets exactly the checks of a
single create, in the same order:

1. ``context_type`` and ``entity_uid`` well-formed, the entity exists and (for an API
   caller) is visible — else *not found*, with the words of the single-create 404;
2. the body has the shape ``MetricValueCreateSerializer`` accepts (the single create's own
   input serializer, so unknown fields, blank strings and bad dates read the same);
3. ``metrics.services.metric_value_build``: metric known, same context, active, value,
   date, timezone and ``_metadata`` rules;
4. the caller may write the entity (editors/admins; API keys need ``metrics:write``);
5. the key (entity, metric, time unit, date) — decided by ``on_conflict``.

Items are applied as if one at a time, in order: a key repeated inside one call or file
conflicts with its earlier occurrence exactly as with a stored row, so results never
depend on the batch size.

Validation has a shortcut for the common row (``RowValidator.fast``) built only from the
shared rule functions (``normalize_value`` or, for plain digits,
``is_plain_whole_number``, ``value_errors_for_definition``,
``metric_date_errors``, the serializer's own date field, ``normalize_metadata``, a
memoised ``metric_value_build`` verdict per metric and context). It may only *accept*:
anything it is unsure of goes through the serializer and ``metric_value_build``, which
also writes every error message. ``test_ingestion.py`` checks that the shortcut never
accepts what the full path would refuse, nor stores a different value.

``batch_id``: every row a call or run *creates* carries the call's batch id; a row it
*updates* keeps the batch id of the write that created it. ``revert_batch`` therefore
deletes exactly what one batch created, and never a row that existed before it.

Two writers share everything above: the portable one here (SQLite, and the bulk endpoint
everywhere: a bounded number of queries per call) and the PostgreSQL fast path for files
(``metrics.ingestion_pg``: ``COPY`` into a temporary table, then per batch one statement
that re-checks entity and metric in SQL and writes — a plain ``INSERT`` while rows are
new, a lookup of the stored rows otherwise (read-only while nothing changes),
``INSERT … ON CONFLICT`` after a lost race).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import queue
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import orjson
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone as django_timezone
from rest_framework.exceptions import ValidationError as DRFValidationError
from uuid6 import uuid7

from entities.models import (
    WRITER_ROLES,
    Membership,
    Organization,
    Party,
    Scope,
    User,
    acting_key,
)
from entities.permissions import is_unrestricted_staff
from entities.validators import is_valid_timezone
from exante.db import is_postgresql, violated_constraint

from .constants import METRIC_VALUE_UNIQUE_CONSTRAINT, ContextType, TimeUnit
from .fields import MetadataField, MetricValueCreateSerializer, StrictDateField
from .models import MetricDefinition, MetricValue
from .selectors import entity_queryset, metric_values, visible_entities
from .services import (
    EntityRef,
    is_plain_whole_number,
    metric_date_errors,
    metric_value_build,
    normalize_metadata,
    normalize_value,
    value_errors_for_definition,
)

#: Columns of a bulk item and of an import file, in file order.
FIELDS = (
    "context_type",
    "entity_uid",
    "metric_uid",
    "time_unit",
    "metric_date",
    "value",
    "timezone",
    "_metadata",
)
REQUIRED_FIELDS = ("context_type", "entity_uid", "metric_uid", "metric_date", "value")
BODY_FIELDS = FIELDS[2:]
#: Columns ``--errors-out`` adds; an import ignores them, so that file can be fixed and
#: imported again as it is.
ANNOTATION_FIELDS = ("_line", "_error")

NON_FIELD = "non_field_errors"
NOT_FOUND = "No {context_type} with this uid was found."
WRITE_DENIED = "You may read but not write values of this {context}."
DUPLICATE = "A value for this date already exists."

_CONTEXT_TYPES = frozenset(ContextType.values)
_TIME_UNITS = frozenset(TimeUnit.values)
_PLACEHOLDER_DATE = date(2000, 1, 1)  # aligned for every time unit
_UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


class OnConflict(models.TextChoices):
    ERROR = "error", "Fail the item (the whole call for the bulk endpoint)"
    SKIP = "skip", "Leave the stored value alone"
    UPDATE = "update", "Overwrite value, timezone and _metadata"


class Status:
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    ERROR = "error"
    ALL = (CREATED, UPDATED, UNCHANGED, SKIPPED, ERROR)


# --- Results --------------------------------------------------------------------------------


@dataclass(slots=True)
class ItemResult:
    """What happened to one item (``index``: position in the call, or line in the file)."""

    index: int
    status: str
    uid: UUID | None = None
    errors: dict[str, list[str]] | None = None
    code: str | None = None
    #: A file line refused before it became an item: what it was read as, if anything
    #: (for ``--errors-out``).
    raw: object = None

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "status": self.status,
            "uid": str(self.uid) if self.uid else None,
            "code": self.code,
            "errors": self.errors,
        }


def _error(
    index: int, errors: dict, code: str = "validation_error", uid=None, raw=None
) -> ItemResult:
    return ItemResult(index, Status.ERROR, uid=uid, errors=errors, code=code, raw=raw)


def not_found_result(index: int, context_type: str) -> ItemResult:
    message = NOT_FOUND.format(context_type=context_type)
    return _error(index, {"entity_uid": [message]}, code="not_found")


def duplicate_result(index: int, uid: UUID | None) -> ItemResult:
    return _error(index, {"metric_date": [DUPLICATE]}, code="duplicate_value", uid=uid)


def new_counts() -> dict[str, int]:
    return dict.fromkeys(Status.ALL, 0)


def format_errors(errors: Mapping[str, list[str]]) -> str:
    """``{"value": ["…"]}`` → ``"value: …"`` for a terminal or a CSV cell."""
    parts = []
    for name, messages in errors.items():
        for message in messages:
            parts.append(message if name == NON_FIELD else f"{name}: {message}")
    return "; ".join(parts)


# --- Rows -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Pending:
    """An item whose entity fields are well-formed, the entity not yet resolved.

    ``raw`` is the whole item; ``body`` strips the entity fields off it on demand.
    """

    index: int
    context_type: str
    entity_uid: UUID
    entity_text: str
    raw: Mapping


@dataclass(slots=True)
class Row:
    """A valid value, ready to write. ``timezone=None`` means the entity's default."""

    index: int
    context_type: str
    entity_uid: UUID
    definition: MetricDefinition
    time_unit: str
    metric_date: date
    value: Decimal
    timezone: str | None
    metadata: dict

    @property
    def key(self) -> tuple:
        return (self.entity_uid, self.definition.pk, self.time_unit, self.metric_date)


class JsonText(str):
    """A ``_metadata`` CSV cell: JSON text, parsed only when needed (and memoised on the
    common path, where the same cell repeats down a file)."""

    __slots__ = ()


_uuid_cache: dict[str, tuple[UUID, str]] = {}


def _parse_uuid(raw: object) -> tuple[UUID, str] | None:
    """→ (UUID, canonical text); memoised, as a file repeats each entity many times."""
    if raw.__class__ is UUID:
        return raw, str(raw)
    if not isinstance(raw, str):
        return None
    found = _uuid_cache.get(raw)
    if found is None:
        if not _UUID_TEXT.match(raw):
            return None
        parsed = UUID(raw)
        found = (parsed, str(parsed))
        if len(_uuid_cache) > 100_000:
            _uuid_cache.clear()
        _uuid_cache[raw] = found
    return found


def split_item(index: int, raw: object) -> Pending | ItemResult:
    """Check an item's entity fields (``context_type``, ``entity_uid``).

    A malformed entity is the bulk form of the single create's 404: without it nothing
    else can be judged, so only those fields are reported.
    """
    if not isinstance(raw, Mapping):
        return _error(index, {NON_FIELD: ["Each item must be a JSON object."]})
    context_type = raw.get("context_type")
    entity = _parse_uuid(raw.get("entity_uid"))
    if context_type in _CONTEXT_TYPES and entity is not None:
        return Pending(index, context_type, entity[0], entity[1], raw)
    errors: dict[str, list[str]] = {}
    if context_type is None:
        errors["context_type"] = ["This field is required."]
    elif context_type not in _CONTEXT_TYPES:
        allowed = ", ".join(ContextType.values)
        errors["context_type"] = [f"context_type must be one of {allowed}."]
    if raw.get("entity_uid") is None:
        errors["entity_uid"] = ["This field is required."]
    elif entity is None:
        errors["entity_uid"] = ["Must be a valid UUID."]
    return _error(index, errors)


# --- Validation -----------------------------------------------------------------------------


def _messages(detail) -> dict[str, list[str]]:
    return {name: [str(message) for message in messages] for name, messages in detail.items()}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


def _metadata_from_text(text: str):
    """A CSV ``_metadata`` cell → JSON value. Floats stay floats: ``normalize_metadata``
    stores metadata numbers as JSON numbers anyway."""
    return json.loads(text, parse_constant=_reject_constant)


_NOT_SURE = False


class RowValidator:
    """Steps 2 and 3 above for one item, against a catalogue of definitions.

    ``definitions`` maps uid → definition; a uid not in it is looked up (and remembered)
    on the full path, so a partial catalogue is only slower, never wrong.
    """

    def __init__(self, definitions: Mapping[str, MetricDefinition], *, allow_inactive: bool):
        self.definitions = dict(definitions)
        self.allow_inactive = allow_inactive
        self._metrics: dict[tuple, MetricDefinition | bool] = {}
        self._dates: dict[tuple, date | bool] = {}
        self._heads: dict[tuple, tuple | bool] = {}
        self._zones: set[str] = set()
        self._texts: dict[str, tuple | bool] = {}
        self._wholes: dict[int, bool] = {}
        self._date_field = StrictDateField()
        self._metadata_field = MetadataField(required=False, allow_null=True)

    # The shortcut. Every test below is the rule function the full path would call, or a
    # memo of its answer for the same input; ``None`` means "not sure", never "invalid".
    def fast(self, context_type: str, raw: Mapping) -> tuple | None:
        """→ (definition, time_unit, metric_date, value, timezone, metadata, metadata JSON
        or None), or ``None`` to take the full path. ``value`` is a Decimal, or text of
        plain digits (see ``_fast_rest``)."""
        if not raw.keys() <= _ITEM_KEYS:
            return None
        get = raw.get
        return self.fast_cells(
            context_type,
            get("metric_uid"),
            get("time_unit", "day"),
            get("metric_date"),
            get("value"),
            get("timezone"),
            get("_metadata"),
        )

    def fast_cells(
        self,
        context_type: str,
        metric_uid: object,
        time_unit: object,
        metric_date: object,
        raw_value: object,
        zone: object,
        metadata: object,
    ) -> tuple | None:
        """``fast`` for an item already taken apart (an absent ``time_unit`` is ``"day"``,
        any other absent field ``None``): CSV records come here without becoming dicts."""
        definition = self._metric(metric_uid, context_type)
        if definition is _NOT_SURE:
            return None
        metric_date = self._date(metric_date, time_unit)
        if metric_date is _NOT_SURE:
            return None
        return self._fast_rest(definition, time_unit, metric_date, raw_value, zone, metadata)

    def fast_text(
        self,
        context_type: str,
        metric_uid: str | None,
        time_unit: str,
        metric_date: str | None,
        raw_value: str | None,
        zone: str | None,
        metadata: JsonText | None,
    ) -> tuple | None:
        """``fast_cells`` for CSV cells (text, or ``None`` where blank): the metric and
        date verdicts, which repeat down a file, are memoised together."""
        key = (metric_uid, context_type, time_unit, metric_date)
        head = self._heads.get(key)
        if head is None:
            head = definition = self._metric(metric_uid, context_type)
            if definition is not _NOT_SURE:
                parsed = self._date(metric_date, time_unit)
                head = _NOT_SURE if parsed is _NOT_SURE else (definition, parsed)
            if len(self._heads) > 100_000:
                self._heads.clear()
            self._heads[key] = head
        if head is _NOT_SURE:
            return None
        return self._fast_rest(head[0], time_unit, head[1], raw_value, zone, metadata)

    def _fast_rest(self, definition, time_unit, metric_date, raw_value, zone, metadata):
        """The value, timezone and ``_metadata`` part of the shortcut.

        A value of plain digits (``is_plain_whole_number``) comes back as that text: it is
        exact as it stands, and the metric's rules pass it if they pass any whole,
        non-negative number. Anything else comes back as ``normalize_value``'s Decimal.
        """
        if raw_value is None:
            return None
        if is_plain_whole_number(raw_value) and self._whole_numbers_allowed(definition):
            value = raw_value
        else:
            try:
                value = normalize_value(raw_value)
            except ValidationError:
                return None
            if value_errors_for_definition(value, definition):
                return None
        if zone is not None and (zone.__class__ is not str or zone not in self._zones):
            if not (zone.__class__ is str and zone.strip() == zone and is_valid_timezone(zone)):
                return None
            self._zones.add(zone)
        if metadata is None:
            return definition, time_unit, metric_date, value, zone, {}, "{}"
        if metadata.__class__ is JsonText:
            memo = self._texts.get(metadata)
            if memo is None:
                memo = self._metadata_text(metadata)
            if memo is _NOT_SURE:
                return None
            return definition, time_unit, metric_date, value, zone, memo[0], memo[1]
        try:
            clean = normalize_metadata(self._metadata_field.run_validation(metadata))
        except (ValidationError, DRFValidationError):
            return None
        return definition, time_unit, metric_date, value, zone, clean, None

    def _whole_numbers_allowed(self, definition: MetricDefinition) -> bool:
        """``value_errors_for_definition`` looks only at wholeness and sign: its verdict on
        1 is its verdict on every whole, non-negative value."""
        verdict = self._wholes.get(definition.id)  # not .pk: a property, and this is hot
        if verdict is None:
            verdict = not value_errors_for_definition(Decimal(1), definition)
            self._wholes[definition.id] = verdict
        return verdict

    def _metric(self, metric_uid: object, context_type: str):
        """The metric-level verdict of ``metric_value_build`` (known, same context,
        active), asked once per metric and context with an otherwise perfect row."""
        if metric_uid.__class__ is not str:
            return _NOT_SURE
        key = (metric_uid, context_type)
        verdict = self._metrics.get(key)
        if verdict is None:
            definition = self.definitions.get(metric_uid)
            verdict = _NOT_SURE
            if definition is not None:
                try:
                    metric_value_build(
                        definition=definition,
                        entity=EntityRef(context_type, UUID(int=0), "UTC"),
                        metric_date=_PLACEHOLDER_DATE,
                        value=0,
                        allow_inactive=self.allow_inactive,
                    )
                    verdict = definition
                except ValidationError:
                    pass
            self._metrics[key] = verdict
        return verdict

    def _date(self, raw: object, time_unit: object):
        """The serializer's date field, the time unit's choices and ``metric_date_errors``,
        memoised per (text, unit)."""
        if raw.__class__ is not str or time_unit.__class__ is not str:
            return _NOT_SURE
        key = (raw, time_unit)
        verdict = self._dates.get(key)
        if verdict is None:
            verdict = _NOT_SURE
            if time_unit in _TIME_UNITS:
                try:
                    parsed = self._date_field.to_internal_value(raw)
                    if not metric_date_errors(parsed, time_unit):
                        verdict = parsed
                except DRFValidationError:
                    pass
            if len(self._dates) > 100_000:
                self._dates.clear()
            self._dates[key] = verdict
        return verdict

    def _metadata_text(self, text: str):
        try:
            clean = normalize_metadata(
                self._metadata_field.run_validation(_metadata_from_text(text))
            )
            memo = (clean, orjson.dumps(clean).decode())
        except (ValueError, ValidationError, DRFValidationError):
            memo = _NOT_SURE
        if len(self._texts) > 10_000:
            self._texts.clear()
        self._texts[text] = memo
        return memo

    def _definition(self, uid: str) -> MetricDefinition | None:
        if uid not in self.definitions:
            self.definitions[uid] = MetricDefinition.objects.filter(uid=uid).first()
        return self.definitions[uid]

    def validate(self, pending: Pending) -> Row | dict[str, list[str]]:
        """A ``Row``, or the errors a single create would answer with (field → messages)."""
        quick = self.fast(pending.context_type, pending.raw)
        if quick is None:
            return self.validate_fully(pending)
        definition, time_unit, metric_date, value, zone, metadata, _json = quick
        if value.__class__ is str:  # plain digits: the Decimal a single create stores
            value = normalize_value(value)
        return Row(
            pending.index,
            pending.context_type,
            pending.entity_uid,
            definition,
            time_unit,
            metric_date,
            value,
            zone,
            metadata,
        )

    def validate_fully(self, pending: Pending) -> Row | dict[str, list[str]]:
        """The single create's path: its serializer, then ``metric_value_build``."""
        data = {k: v for k, v in pending.raw.items() if k not in ("context_type", "entity_uid")}
        metadata = data.get("_metadata")
        if metadata.__class__ is JsonText:
            try:
                data["_metadata"] = _metadata_from_text(metadata)
            except ValueError as exc:
                return {"_metadata": [f"Not valid JSON: {exc}."]}
        body = MetricValueCreateSerializer(data=data)
        if not body.is_valid():
            return _messages(body.errors)
        data = body.validated_data
        metric_uid = data["metric_uid"]
        try:
            built = metric_value_build(
                definition=self._definition(metric_uid),
                metric_uid=metric_uid,
                # The default timezone is filled in by the writer, which knows the entity.
                entity=EntityRef(pending.context_type, pending.entity_uid, None),
                time_unit=data["time_unit"],
                metric_date=data["metric_date"],
                value=data["value"],
                timezone=data.get("timezone"),
                metadata=data.get("_metadata"),
                allow_inactive=self.allow_inactive,
            )
        except ValidationError as exc:
            return exc.message_dict
        return Row(
            pending.index,
            pending.context_type,
            pending.entity_uid,
            built.metric,
            built.time_unit,
            built.metric_date,
            built.value,
            built.timezone,
            built.metadata,
        )


_ITEM_KEYS = frozenset(FIELDS)


# --- Who may write --------------------------------------------------------------------------


def writable_check(user, entities: Iterable) -> Callable[[object], bool]:
    """``entities.permissions.can_write_values`` for many entities in at most two queries.

    (A batched twin of that function: the same rules — staff, writer roles, an API key's
    ``metrics:write`` scope and organization — answered for a whole call at once.)
    """
    if user is None or is_unrestricted_staff(user):
        return lambda entity: True
    if not (user and user.is_authenticated):
        return lambda entity: False
    key = acting_key(user)
    if key is not None:
        if not key.has_scope(Scope.METRICS_WRITE):
            return lambda entity: False
        organization_ids = {key.organization_id}
    else:
        organization_ids = set(
            Membership.objects.filter(user=user, role__in=WRITER_ROLES).values_list(
                "organization_id", flat=True
            )
        )
    other_users = {e.pk for e in entities if isinstance(e, User) and e.pk != user.pk}
    colleagues: set[int] = set()
    if other_users and organization_ids:
        colleagues = set(
            Membership.objects.filter(
                user_id__in=other_users, organization_id__in=organization_ids
            ).values_list("user_id", flat=True)
        )

    def allows(entity) -> bool:
        if isinstance(entity, Organization):
            return entity.pk in organization_ids
        if isinstance(entity, Party):
            return entity.organization_id in organization_ids
        if isinstance(entity, User):
            return entity.pk == user.pk or entity.pk in colleagues
        return False

    return allows


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


# --- Applying items in order ----------------------------------------------------------------


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
    columns = ", ".join(quote(c) for c in ("entity_uid", "metric_id", "time_unit", "metric_date"))
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
        for uid, *key, value, zone, metadata in queryset.values_list(
            "uid",
            "entity_uid",
            "metric_id",
            "time_unit",
            "metric_date",
            "value",
            "timezone",
            "metadata",
        ):
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


_INSERT_COLUMNS = (
    "uid",
    "metric_id",
    "context_type",
    "entity_uid",
    "time_unit",
    "metric_date",
    "value",
    "timezone",
    "metadata",
    "batch_id",
    "created_at",
    "updated_at",
)


def _write(new_rows: list, updates: list[_Stored], *, batch_id: UUID, now: datetime) -> None:
    """Two statements whatever the number of rows (``executemany``), so the query count
    of a call does not grow with its size."""
    meta = MetricValue._meta
    prep = {name: meta.get_field(name).get_db_prep_save for name in _INSERT_COLUMNS}
    prep["metric_id"] = meta.get_field("metric").get_db_prep_save
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    stamp = prep["created_at"](now, connection)
    batch = prep["batch_id"](batch_id, connection)
    with connection.cursor() as cursor:
        if new_rows:
            columns = ", ".join(quote(c) for c in _INSERT_COLUMNS)
            marks = ", ".join(["%s"] * len(_INSERT_COLUMNS))
            params = [
                (
                    prep["uid"](uid, connection),
                    row.definition.pk,
                    row.context_type,
                    prep["entity_uid"](row.entity_uid, connection),
                    row.time_unit,
                    prep["metric_date"](row.metric_date, connection),
                    prep["value"](row.value, connection),
                    row.timezone,
                    prep["metadata"](row.metadata, connection),
                    batch,
                    stamp,
                    stamp,
                )
                for uid, row in new_rows
            ]
            insert = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
            cursor.executemany(insert, params)
        if updates:
            sets = ", ".join(f"{quote(c)} = %s" for c in ("value", "timezone", "metadata"))
            params = [
                (
                    prep["value"](stored.value, connection),
                    stored.timezone,
                    prep["metadata"](stored.metadata, connection),
                    stamp,
                    prep["uid"](stored.uid, connection),
                )
                for stored in updates
            ]
            update = (
                f"UPDATE {table} SET {sets}, {quote('updated_at')} = %s "  # noqa: S608
                f"WHERE {quote('uid')} = %s"
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
    row_entities = []
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
            row_entities.append(entity)
        else:
            results[positions[pending.index]] = _error(pending.index, checked)
    if user is not None and rows:
        may_write = writable_check(user, row_entities)
        allowed = []
        for row, entity in zip(rows, row_entities, strict=True):
            if may_write(entity):
                allowed.append(row)
            else:
                context = row.context_type.lower()
                results[positions[row.index]] = _error(
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


# --- The bulk endpoint ----------------------------------------------------------------------


@dataclass
class BulkReport:
    batch_id: UUID | None
    dry_run: bool
    on_conflict: str
    outcome: BatchOutcome

    @property
    def rejected(self) -> bool:
        return self.outcome.rejected

    def as_data(self) -> dict:
        counts = self.outcome.counts()
        counts["total"] = len(self.outcome.results)
        return {
            "batch_id": str(self.batch_id) if self.batch_id else None,
            "on_conflict": self.on_conflict,
            "dry_run": self.dry_run,
            "written": not self.dry_run and not self.rejected,
            "counts": counts,
            "results": [result.as_dict() for result in self.outcome.results],
        }


def metric_values_bulk_ingest(
    *, items: list, user, on_conflict: str = OnConflict.ERROR, dry_run: bool = False
) -> BulkReport:
    """The bulk endpoint's service: all items in one transaction and a bounded number of
    queries. ``on_conflict=error`` is all or nothing."""
    uids = {
        item["metric_uid"].strip()
        for item in items
        if isinstance(item, Mapping) and isinstance(item.get("metric_uid"), str)
    }
    batch_id = uuid7()
    with transaction.atomic():
        definitions = {d.uid: d for d in MetricDefinition.objects.filter(uid__in=uids)}
        validator = RowValidator(definitions, allow_inactive=False)
        outcome = ingest_portable(
            list(enumerate(items)),
            validator=validator,
            on_conflict=on_conflict,
            batch_id=batch_id,
            user=user,
            write=not dry_run,
            all_or_nothing=on_conflict == OnConflict.ERROR,
        )
    written = not dry_run and not outcome.rejected
    return BulkReport(batch_id if written else None, dry_run, on_conflict, outcome)


# --- Files ----------------------------------------------------------------------------------


class SourceError(Exception):
    """The file as a whole cannot be read (bad header, unknown format)."""


#: A byte that is not UTF-8, as ``open_text``'s ``surrogateescape`` decoding gives it.
_UNDECODED = re.compile("[\udc80-\udcff]")
_CHUNK_CHARS = 1 << 16


class TextLines:
    """The lines of a stream from ``open_text``, noting each line that holds bytes that
    are not UTF-8 (``bad``: line number → its first such byte), for the reader to report
    the record instead of reading it.

    ``open_text`` decodes with ``surrogateescape``: each byte that is not UTF-8 arrives
    as a lone surrogate (U+DC80–U+DCFF) and every ASCII byte as itself, so lines and
    CSV quoting split exactly as in the bytes. Lines are checked a chunk at a time: an
    ASCII chunk, the common case, in constant time; another by encoding it back, and
    only a chunk that holds such a byte line by line.
    """

    def __init__(self, stream: io.TextIOBase):
        self.stream = stream
        self.bad: dict[int, int] = {}

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._chunks())

    def _chunks(self) -> Iterator[list[str]]:
        readlines = self.stream.readlines
        search = _UNDECODED.search
        number = 0
        while lines := self._read(readlines, number):
            chunk = "".join(lines)
            if not chunk.isascii():
                try:
                    chunk.encode()  # refuses surrogates; a sixth of a search's time
                except UnicodeEncodeError:
                    for offset, line in enumerate(lines, start=number + 1):
                        if found := search(line):
                            self.bad[offset] = ord(found.group()) - 0xDC00
            number += len(lines)
            yield lines

    @staticmethod
    def _read(readlines, number: int) -> list[str]:
        try:
            return readlines(_CHUNK_CHARS)
        except (OSError, EOFError, zlib.error) as exc:  # a damaged .gz, a failing disk
            after = f" after line {number}" if number else ""
            raise SourceError(f"Cannot read the file{after}: {exc}.") from exc

    def take(self, last: int) -> tuple[int, int] | None:
        """Forget the bad lines up to ``last``; → the first of them and its byte."""
        first = None
        for number in [n for n in self.bad if n <= last]:
            byte = self.bad.pop(number)
            if first is None:
                first = (number, byte)
        return first


def undecodable_result(index: int, bad_line: int, byte: int, raw: object = None) -> ItemResult:
    where = "" if bad_line == index else f" on line {bad_line}"
    problem = f"Not valid UTF-8: byte 0x{byte:02X}{where}."
    return _error(index, {NON_FIELD: [problem]}, raw=raw)


def _floats(node):
    if isinstance(node, Decimal):
        return float(node)
    if isinstance(node, dict):
        return {k: _floats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_floats(v) for v in node]
    return node


class CsvRows:
    """``(line number, item)`` per CSV record; an empty cell means "not given".

    The header names the columns (any order); unknown columns are an error for the whole
    file, ``_line``/``_error`` (written by ``--errors-out``) are ignored.

    Iterating gives items (dicts). ``records()`` gives the same rows undigested, as lists
    of cells in ``FIELDS`` order (``""`` where not given), for a caller that validates
    cells directly (``RowValidator.fast_cells``) and builds an item with ``item()`` only
    for a row it must report or send down the full path.
    """

    def __init__(self, stream: io.TextIOBase):
        self.stream = stream

    def __iter__(self) -> Iterator[tuple[int, object]]:
        item = self.item
        for line, record in self.records():
            yield line, record if record.__class__ is ItemResult else item(record)

    @staticmethod
    def item(cells: list[str]) -> dict:
        """Cells in ``FIELDS`` order → the item a JSON caller would have sent."""
        item = {name: cell for name, cell in zip(FIELDS, cells, strict=True) if cell != ""}
        if "_metadata" in item:
            item["_metadata"] = JsonText(item["_metadata"])
        return item

    def records(self) -> Iterator[tuple[int, list[str] | ItemResult]]:
        lines = TextLines(self.stream)
        bad = lines.bad
        reader = csv.reader(lines)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            return
        except csv.Error as exc:
            raise SourceError(f"The header is not valid CSV: {exc}.") from exc
        if bad and (found := lines.take(reader.line_num)):
            raise SourceError(
                f"line {found[0]}: the header is not valid UTF-8: byte 0x{found[1]:02X}."
            )
        unknown = [n for n in header if n not in FIELDS and n not in ANNOTATION_FIELDS]
        if unknown:
            raise SourceError(
                f"Unknown column(s) {', '.join(unknown)}; the columns are {', '.join(FIELDS)}."
            )
        missing = [n for n in REQUIRED_FIELDS if n not in header]
        if missing:
            raise SourceError(f"Missing required column(s): {', '.join(missing)}.")
        if len(set(header)) != len(header):
            raise SourceError("A column appears twice in the header.")
        width = len(header)
        # A column the header lacks reads the empty cell appended to every record.
        positions = [header.index(n) if n in header else width for n in FIELDS]
        in_order = positions == list(range(len(FIELDS))) and width == len(FIELDS)
        line = reader.line_num
        while True:
            try:
                for record in reader:
                    start, line = line + 1, reader.line_num
                    if bad and (found := lines.take(line)):
                        raw = None
                        if len(record) == width:
                            record.append("")
                            raw = self.item([record[i] for i in positions])
                        yield start, undecodable_result(start, *found, raw=raw)
                        continue
                    if not record:
                        continue
                    if len(record) != width:
                        problem = f"Expected {width} columns, found {len(record)}."
                        yield start, _error(start, {NON_FIELD: [problem]})
                        continue
                    if not in_order:
                        record.append("")
                        record = [record[i] for i in positions]
                    yield start, record
                return
            except csv.Error as exc:  # a field over the size limit: its record only
                start, line = line + 1, reader.line_num
                lines.take(line)
                yield start, _error(start, {NON_FIELD: [f"Not valid CSV: {exc}."]})


def csv_rows(stream: io.TextIOBase) -> CsvRows:
    return CsvRows(stream)


def jsonl_rows(stream: io.TextIOBase) -> Iterator[tuple[int, object]]:
    """``(line number, item)`` per JSON Lines object; blank lines are skipped. Numbers with
    a fraction parse exactly (``Decimal``), as in the API."""
    lines = TextLines(stream)
    bad = lines.bad
    for number, line in enumerate(lines, start=1):
        if bad and number in bad:
            try:
                raw = _json_item(line)
            except ValueError:
                raw = None
            yield number, undecodable_result(number, number, bad.pop(number), raw=raw)
            continue
        if not line.strip():
            continue
        try:
            item = _json_item(line)
        except ValueError as exc:
            yield number, _error(number, {NON_FIELD: [f"Not valid JSON: {exc}."]})
            continue
        yield number, item


def _json_item(line: str) -> object:
    item = json.loads(line, parse_float=Decimal, parse_constant=_reject_constant)
    if isinstance(item, dict) and isinstance(item.get("_metadata"), dict | list):
        item["_metadata"] = _floats(item["_metadata"])
    return item


def raw_cells(item: object) -> dict[str, str]:
    """An item as CSV cells (for ``--errors-out``); a byte that is not UTF-8 is written
    as ``\\xNN``, so that the file stays UTF-8 and shows where the byte was."""
    if item.__class__ is ItemResult:  # a line refused as read
        item = item.raw
    if not isinstance(item, Mapping):
        return {}
    cells = {}
    for name in FIELDS:
        value = item.get(name)
        if value is None:
            cells[name] = ""
        elif name == "_metadata" and not isinstance(value, str):
            cells[name] = _escaped(json.dumps(value, default=str, ensure_ascii=False))
        else:
            cells[name] = _escaped(str(value))
    return cells


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(found: re.Match) -> str:
    code = ord(found.group())
    return f"\\x{code - 0xDC00:02x}" if code >= 0xDC80 else f"\\u{code:04x}"


def _escaped(text: str) -> str:
    """``text`` with each byte that was not UTF-8 as ``\\xNN`` (any other lone surrogate,
    which only a JSON escape can give, as ``\\uNNNN``): writable as UTF-8."""
    return text if text.isascii() else _SURROGATE.sub(_escape_surrogate, text)


@dataclass
class ImportSummary:
    batch_id: UUID
    counts: dict[str, int] = field(default_factory=new_counts)
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    engine: str = "portable"
    #: PostgreSQL engine: rounds whose fast statement lost a race to a concurrent writer
    #: and were redone with ``INSERT … ON CONFLICT``.
    races: int = 0

    @property
    def failed(self) -> int:
        return self.counts[Status.ERROR]


#: Called after each batch commits, with the batch number (1-based). Tests set it to
#: interrupt a run at a known point; nothing else should.
after_batch_commit: Callable[[int], None] | None = None


class Importer:
    """Feeds ``(line, item)`` pairs through the ingestion path in batches, each batch in
    its own transaction, so an interrupted run keeps what it committed and a re-run
    finishes the job (already-written rows come back ``unchanged`` or ``skipped``).

    A dry run does the same work inside one transaction that is rolled back at the end,
    so its report is exactly that of a real run.
    """

    def __init__(
        self,
        *,
        on_conflict: str = OnConflict.UPDATE,
        dry_run: bool = False,
        allow_inactive: bool = False,
        batch_id: UUID | None = None,
        batch_size: int = 20_000,
        engine: str = "auto",
        on_error: Callable[[int, object, dict], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ):
        self.on_conflict = on_conflict
        self.dry_run = dry_run
        self.allow_inactive = allow_inactive
        self.batch_id = batch_id or uuid7()
        self.batch_size = batch_size
        if engine == "auto":
            engine = "postgresql" if is_postgresql() else "portable"
        if engine == "postgresql" and not is_postgresql():
            raise ValueError("the postgresql engine needs a PostgreSQL database")
        self.engine = engine
        self.on_error = on_error or (lambda line, item, errors: None)
        self.on_progress = on_progress or (lambda rows: None)

    def run(self, rows: Iterable[tuple[int, object]]) -> ImportSummary:
        summary = ImportSummary(self.batch_id, engine=self.engine)
        started = time.monotonic()
        validator = RowValidator(
            {d.uid: d for d in MetricDefinition.objects.all()},
            allow_inactive=self.allow_inactive,
        )
        if self.dry_run:
            with transaction.atomic():
                self._run(rows, validator, summary)
                transaction.set_rollback(True)
        else:
            self._run(rows, validator, summary)
        summary.seconds = time.monotonic() - started
        return summary

    def _run(self, rows, validator, summary) -> None:
        if self.engine == "postgresql":
            from .ingestion_pg import run_postgresql

            run_postgresql(self, rows, validator, summary)
            return
        for batch in _batches(rows, self.batch_size):
            with transaction.atomic():
                outcome = ingest_portable(
                    batch,
                    validator=validator,
                    on_conflict=self.on_conflict,
                    batch_id=self.batch_id,
                )
            errors = [r for r in outcome.results if r.status == Status.ERROR]
            self.batch_done(summary, outcome.counts(), errors, dict(batch), len(batch))

    def batch_done(
        self,
        summary: ImportSummary,
        counts: Mapping[str, int],
        errors: list[ItemResult],
        raws: Mapping,
        size: int,
    ) -> None:
        """Count, report errors in line order, tick progress, run the test hook."""
        for status, number in counts.items():
            summary.counts[status] += number
        for result in sorted(errors, key=lambda r: r.index):
            self.on_error(result.index, raws.get(result.index), result.errors)
        summary.rows += size
        summary.batches += 1
        self.on_progress(size)
        if after_batch_commit is not None:
            after_batch_commit(summary.batches)


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def prefetch(iterable: Iterable, depth: int = 1) -> Iterator:
    """Run ``iterable`` in a thread, at most ``depth`` items ahead of the consumer.

    The importer's parsing and validation (pure Python) then overlaps with the database's
    work on the previous batch. The producer must not touch the database.

    "Ahead" counts the item being made: the producer starts the next one only once the
    consumer has taken the last, so at most ``depth + 1`` items are alive at once (the
    consumer's and those ahead) — a batch's worth of memory less than a queue of
    ``depth`` that a producer fills while holding one more.
    """
    channel: queue.Queue = queue.Queue()
    slots = threading.Semaphore(depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            elements = iter(iterable)
            while True:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                element = next(elements, done)
                channel.put((None, element))
                if element is done:
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            channel.put((exc, None))

    worker = threading.Thread(target=produce, name="ingest-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            exc, element = channel.get()
            if exc is not None:
                raise exc
            if element is done:
                return
            slots.release()
            yield element
    finally:
        stop.set()
        worker.join(timeout=5)


def open_text(path: str, stdin=None) -> tuple[io.TextIOBase, Callable[[], int], int | None]:
    """A text stream for ``path`` (``-`` = stdin; ``.gz`` decompressed), a function that
    tells how many bytes were consumed so far, and the total (None when unknown)."""
    import gzip
    import os
    import sys

    # A byte that is not UTF-8 fails its line, not the file (``TextLines``).
    decoding = {"encoding": "utf-8-sig", "errors": "surrogateescape", "newline": ""}
    if path == "-":
        stdin = stdin or sys.stdin
        if hasattr(stdin, "buffer"):
            stdin = io.TextIOWrapper(stdin.buffer, **decoding)
        return stdin, lambda: 0, None
    binary = open(path, "rb")  # noqa: SIM115 - closed with the text wrapper by the caller
    total = os.fstat(binary.fileno()).st_size
    source = gzip.GzipFile(fileobj=binary) if path.endswith(".gz") else binary
    text = io.TextIOWrapper(source, **decoding)
    return text, binary.tell, total


def detect_format(path: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    name = path[:-3] if path.endswith(".gz") else path
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise SourceError(
        f"Cannot tell the format of {path!r} from its name; use --format csv or jsonl."
    )


def item_rows(path_format: str, stream: io.TextIOBase) -> Iterable[tuple[int, object]]:
    return csv_rows(stream) if path_format == "csv" else jsonl_rows(stream)


# --- Export ---------------------------------------------------------------------------------


def metric_values_for_export(
    *,
    metric_ids: list[int] | None = None,
    time_unit: str | None = None,
    start: date | None = None,
    end: date | None = None,
    organization: Organization | None = None,
    context_type: str | None = None,
    batch_id: UUID | None = None,
) -> models.QuerySet:
    """Values to export, as ``values_list`` rows in the order of the unique index (so
    PostgreSQL streams them without sorting).

    ``organization`` keeps its own values and those of its parties (a user's values
    belong to no single organization: export them with ``context_type=USER``).
    """
    queryset = metric_values().for_metrics(metric_ids).in_range(start, end)
    if time_unit is not None:
        queryset = queryset.with_time_unit(time_unit)
    if context_type is not None:
        queryset = queryset.filter(context_type=context_type)
    if batch_id is not None:
        queryset = queryset.filter(batch_id=batch_id)
    if organization is not None:
        parties = Party.objects.filter(organization=organization).values("uid")
        queryset = queryset.filter(
            models.Q(context_type=ContextType.ORGANIZATION, entity_uid=organization.uid)
            | models.Q(context_type=ContextType.PARTY, entity_uid__in=parties)
        )
    return queryset.order_by("entity_uid", "metric_id", "time_unit", "metric_date").values_list(
        "context_type",
        "entity_uid",
        "metric_id",
        "time_unit",
        "metric_date",
        "value",
        "timezone",
        "metadata",
    )


def export_items(rows: Iterable[tuple], metric_uids: Mapping[int, str]) -> Iterator[dict]:
    """Export rows → items with exactly the import columns, so a file round-trips."""
    for context_type, entity_uid, metric_id, time_unit, metric_date, value, zone, meta in rows:
        yield {
            "context_type": context_type,
            "entity_uid": str(entity_uid),
            "metric_uid": metric_uids[metric_id],
            "time_unit": time_unit,
            "metric_date": metric_date.isoformat(),
            "value": value,
            "timezone": zone,
            "_metadata": meta,
        }


def plain_decimal(value: Decimal) -> str:
    """``Decimal('1234.500000')`` → ``"1234.5"``, never an exponent."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
