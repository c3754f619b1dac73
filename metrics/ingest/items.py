"""An item of bulk ingestion: its fields, its parsing, and what happened to it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

from django.db import models

from ..constants import ContextType
from ..models import MetricDefinition

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

CONTEXT_TYPES = frozenset(ContextType.values)
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


def error_result(
    index: int, errors: dict, code: str = "validation_error", uid=None, raw=None
) -> ItemResult:
    return ItemResult(index, Status.ERROR, uid=uid, errors=errors, code=code, raw=raw)


def not_found_result(index: int, context_type: str) -> ItemResult:
    message = NOT_FOUND.format(context_type=context_type)
    return error_result(index, {"entity_uid": [message]}, code="not_found")


def duplicate_result(index: int, uid: UUID | None) -> ItemResult:
    return error_result(index, {"metric_date": [DUPLICATE]}, code="duplicate_value", uid=uid)


def new_counts() -> dict[str, int]:
    return dict.fromkeys(Status.ALL, 0)


def format_errors(errors: Mapping[str, list[str]]) -> str:
    """``{"value": ["…"]}`` → ``"value: …"`` for a terminal or a CSV cell."""
    parts = []
    for name, messages in errors.items():
        for message in messages:
            parts.append(message if name == NON_FIELD else f"{name}: {message}")
    return "; ".join(parts)


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


uuid_cache: dict[str, tuple[UUID, str]] = {}


def parse_uuid(raw: object) -> tuple[UUID, str] | None:
    """→ (UUID, canonical text); memoised, as a file repeats each entity many times."""
    if raw.__class__ is UUID:
        return raw, str(raw)
    if not isinstance(raw, str):
        return None
    found = uuid_cache.get(raw)
    if found is None:
        if not _UUID_TEXT.match(raw):
            return None
        parsed = UUID(raw)
        found = (parsed, str(parsed))
        if len(uuid_cache) > 100_000:
            uuid_cache.clear()
        uuid_cache[raw] = found
    return found


def split_item(index: int, raw: object) -> Pending | ItemResult:
    """Check an item's entity fields (``context_type``, ``entity_uid``).

    A malformed entity is the bulk form of the single create's 404: without it nothing
    else can be judged, so only those fields are reported.
    """
    if not isinstance(raw, Mapping):
        return error_result(index, {NON_FIELD: ["Each item must be a JSON object."]})
    context_type = raw.get("context_type")
    if not isinstance(context_type, str | None):
        # Any JSON value may stand here; only text can name a context (a list or an
        # object cannot even be looked up in a set).
        context_type = ""
    entity = parse_uuid(raw.get("entity_uid"))
    if context_type in CONTEXT_TYPES and entity is not None:
        return Pending(index, context_type, entity[0], entity[1], raw)
    errors: dict[str, list[str]] = {}
    if context_type is None:
        errors["context_type"] = ["This field is required."]
    elif context_type not in CONTEXT_TYPES:
        allowed = ", ".join(ContextType.values)
        errors["context_type"] = [f"context_type must be one of {allowed}."]
    if raw.get("entity_uid") is None:
        errors["entity_uid"] = ["This field is required."]
    elif entity is None:
        errors["entity_uid"] = ["Must be a valid UUID."]
    return error_result(index, errors)


def reject_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


def metadata_from_text(text: str):
    """A CSV ``_metadata`` cell → JSON value. Floats stay floats: ``normalize_metadata``
    stores metadata numbers as JSON numbers anyway."""
    return json.loads(text, parse_constant=reject_constant)


ITEM_KEYS = frozenset(FIELDS)


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
            cells[name] = escaped(json.dumps(value, default=str, ensure_ascii=False))
        else:
            cells[name] = escaped(str(value))
    return cells


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(found: re.Match) -> str:
    code = ord(found.group())
    return f"\\x{code - 0xDC00:02x}" if code >= 0xDC80 else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """``text`` with each byte that was not UTF-8 as ``\\xNN`` (any other lone surrogate,
    which only a JSON escape can give, as ``\\uNNNN``): writable as UTF-8."""
    return text if text.isascii() else _SURROGATE.sub(_escape_surrogate, text)
