"""Business rules of the metrics domain: the one validation path for metric values and
definitions. The API, the admin and the management commands all call these functions, so
all three enforce the same rules.

Rules that fit one row are database constraints (see models); the rules here span tables
(path context vs definition, entity existence, inactive metrics) or depend on the
definition (count and cents values must be integers).
"""

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import orjson
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone as django_timezone

from entities.validators import is_valid_timezone
from exante.db import conflict_on, violated_constraint

from .changes import change_fields
from .constants import (
    MAX_METRIC_DATE,
    METADATA_MAX_BYTES,
    METRIC_DEFINITION_UID_CONSTRAINT,
    METRIC_VALUE_UNIQUE_CONSTRAINT,
    MIN_METRIC_DATE,
    NUMERIC_STRING_PATTERN,
    VALUE_LIMIT,
    VALUE_QUANTUM,
    StorageUnit,
    TimeUnit,
    ValueType,
)
from .exceptions import (
    DuplicateMetric,
    DuplicateValue,
    MetricInUse,
    PreconditionFailed,
    ValueNotFound,
)
from .models import MetricDefinition, MetricValue
from .selectors import entity_organization_timezone

_NUMERIC_STRING = re.compile(NUMERIC_STRING_PATTERN)

#: Fields of a definition that change the meaning of stored values.
DEFINITION_IMMUTABLE_FIELDS = (
    "uid",
    "context_type",
    "value_type",
    "storage_unit",
    "is_snapshot",
    "period_definition",
    "aggregation",
)
DEFINITION_MUTABLE_FIELDS = ("name", "description", "formula", "is_active")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


# --- Value rules -------------------------------------------------------------------------


def normalize_value(raw: object) -> Decimal:
    """A JSON number or numeric string → a finite Decimal rounded half-even to 6 places.

    Booleans, null, NaN, Infinity, junk strings and |value| ≥ 10^18 are rejected with a
    ``ValidationError`` whose message says why.
    """
    if isinstance(raw, bool) or raw is None:
        raise ValidationError("Enter a number, not %(kind)s.", params={"kind": repr(raw)})
    if isinstance(raw, int | Decimal):
        number = Decimal(raw)
    elif isinstance(raw, float):
        number = Decimal(repr(raw))
    elif isinstance(raw, str):
        if not _NUMERIC_STRING.match(raw):
            raise ValidationError(
                "Enter a number; %(value)r is not numeric (a numeric string is ASCII "
                "digits with an optional sign and fraction: no spaces, no exponent).",
                params={"value": raw[:50]},
            )
        number = Decimal(raw)
    else:
        raise ValidationError("Enter a number.")
    if not number.is_finite():
        raise ValidationError("Enter a finite number.")
    if number != 0 and number.adjusted() >= 18:
        raise ValidationError("The value must be smaller than 10^18 in magnitude.")
    try:
        number = number.quantize(VALUE_QUANTUM, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        raise ValidationError("The value must be smaller than 10^18 in magnitude.") from None
    if abs(number) >= VALUE_LIMIT:
        raise ValidationError("The value must be smaller than 10^18 in magnitude.")
    if number.is_zero():
        # NUMERIC has no negative zero: answer what a later read will return.
        number = number.copy_abs()
    return number


def is_plain_whole_number(raw: object) -> bool:
    """``raw`` is text of 1 to 18 ASCII digits and nothing else: ``normalize_value``
    accepts it as that whole, non-negative number, with nothing to round and below the
    limit. The commonest value in an import file; the importer stages such text as it is
    instead of making a Decimal of it."""
    return raw.__class__ is str and len(raw) <= 18 and raw.isascii() and raw.isdigit()


def value_errors_for_definition(value: Decimal, definition: MetricDefinition) -> list[str]:
    """Rules that depend on the metric: counts are whole and ≥ 0, cents are whole.

    They look only at whether the value is whole and at its sign, so the verdict on one
    whole non-negative value holds for all of them: the importer's shortcut relies on it
    (``RowValidator._whole_numbers_allowed``; a test fails if a rule looks at anything else).
    """
    errors = []
    whole = value == value.to_integral_value()
    if definition.value_type == ValueType.COUNT:
        if not whole:
            errors.append("A count must be a whole number.")
        if value < 0:
            errors.append("A count cannot be negative.")
    if definition.storage_unit == StorageUnit.CENTS and not whole:
        errors.append("A value in cents must be a whole number of minor currency units.")
    return errors


def aligned_date(metric_date: date, time_unit: str) -> date:
    if time_unit == TimeUnit.MONTH:
        return metric_date.replace(day=1)
    if time_unit == TimeUnit.YEAR:
        return metric_date.replace(month=1, day=1)
    return metric_date


def metric_date_errors(metric_date: date, time_unit: str) -> list[str]:
    """Range 1900-01-01 … 2199-12-31 and alignment: month → 1st, year → January 1st."""
    if not MIN_METRIC_DATE <= metric_date <= MAX_METRIC_DATE:
        return [f"metric_date must be between {MIN_METRIC_DATE} and {MAX_METRIC_DATE}."]
    aligned = aligned_date(metric_date, time_unit)
    if aligned != metric_date:
        what = "the first day of a month" if time_unit == TimeUnit.MONTH else "January 1st"
        return [f"For time_unit={time_unit} metric_date must be {what}: use {aligned.isoformat()}."]
    return []


#: PostgreSQL's jsonb cannot hold U+0000 (SQLite could): refused everywhere alike.
_NUL_IN_METADATA = "_metadata may not contain the NUL character (\\u0000)."


def _plain_json(node: Any, depth: int = 0) -> Any:
    """Decimals from the JSON parser → int/float; non-finite numbers and text holding
    U+0000 are rejected."""
    if depth > 64:
        raise ValidationError("_metadata is nested too deeply (at most 64 levels).")
    if isinstance(node, Decimal):
        if not node.is_finite():
            raise ValidationError("_metadata may only hold finite numbers.")
        as_float = float(node)
        if not math.isfinite(as_float):
            raise ValidationError("_metadata holds a number too large to store.")
        return int(node) if node == node.to_integral_value() and node.adjusted() < 18 else as_float
    if isinstance(node, float) and not math.isfinite(node):
        raise ValidationError("_metadata may only hold finite numbers.")
    if isinstance(node, str):
        if "\x00" in node:
            raise ValidationError(_NUL_IN_METADATA)
        return node
    if isinstance(node, Mapping):
        if any("\x00" in str(key) for key in node):
            raise ValidationError(_NUL_IN_METADATA)
        return {str(key): _plain_json(value, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain_json(value, depth + 1) for value in node]
    return node


def normalize_metadata(raw: object) -> dict:
    """A JSON object of at most 16 KiB serialized; ``None`` means ``{}``."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValidationError("_metadata must be a JSON object.")
    plain = _plain_json(raw)
    try:
        size = len(orjson.dumps(plain))
    except TypeError:
        raise ValidationError("_metadata must contain only JSON values.") from None
    if size > METADATA_MAX_BYTES:
        raise ValidationError(
            f"_metadata is {size} bytes serialized; the limit is {METADATA_MAX_BYTES}."
        )
    return plain


# --- Metric values --------------------------------------------------------------------------

#: ``TimeUnit.values`` builds a new list on every access.
_TIME_UNITS = frozenset(TimeUnit.values)


@dataclass(frozen=True)
class EntityRef:
    """What a value needs to know about its entity."""

    context_type: str
    uid: UUID
    default_timezone: str

    @classmethod
    def of(cls, context_type: str, entity) -> "EntityRef":
        return cls(context_type, entity.uid, entity_organization_timezone(entity))


@dataclass(frozen=True, slots=True)
class ValueFields:
    """The fields of a new value that are valid whatever its metric and entity:
    ``value`` rounded, ``metadata`` plain JSON, ``timezone`` ``None`` for the entity's
    default."""

    time_unit: str
    metric_date: date
    value: Decimal
    timezone: str | None
    metadata: dict


def _field_errors(
    *, time_unit: str, metric_date: date, value: object, timezone: str | None, metadata: object
) -> tuple[dict[str, list[str]], ValueFields | None, Decimal | None]:
    """Every rule of a new value that needs neither its metric nor its entity: the errors
    by field, the clean fields when there are none, and the number when it is one."""
    errors: dict[str, list[str]] = {}
    if time_unit not in _TIME_UNITS:
        errors["time_unit"] = [f"time_unit must be one of {', '.join(TimeUnit.values)}."]
    try:
        number = normalize_value(value)
    except ValidationError as exc:
        errors["value"] = exc.messages
        number = None
    if time_unit in _TIME_UNITS and (date_errors := metric_date_errors(metric_date, time_unit)):
        errors["metric_date"] = date_errors
    if timezone == "":
        timezone = None
    if timezone is not None and not is_valid_timezone(timezone):
        errors["timezone"] = [f"{timezone!r} is not a known IANA timezone name."]
    clean_metadata: dict = {}
    try:
        clean_metadata = normalize_metadata(metadata)
    except ValidationError as exc:
        errors["_metadata"] = exc.messages
    if errors:
        return errors, None, number
    fields = ValueFields(time_unit, metric_date, number, timezone, clean_metadata)
    return errors, fields, number


def metric_value_fields(
    *,
    time_unit: str = TimeUnit.DAY,
    metric_date: date,
    value: object,
    timezone: str | None = None,
    metadata: object = None,
) -> ValueFields:
    """The rules of ``metric_value_build`` that need no database; a ``ValidationError``
    keyed by field when any fails."""
    errors, fields, _number = _field_errors(
        time_unit=time_unit,
        metric_date=metric_date,
        value=value,
        timezone=timezone,
        metadata=metadata,
    )
    if errors:
        raise ValidationError(errors)
    return fields


def _definition_errors_for_value(
    definition: MetricDefinition | None,
    *,
    context_type: str,
    metric_uid: str | None,
    allow_inactive: bool = False,
) -> list[str]:
    """What makes ``definition`` refuse a new value of ``context_type`` (the SQL twin is
    ``DEFINITION_ACCEPTS_SQL``)."""
    if definition is None:
        return [f"Unknown metric {metric_uid!r}."]
    errors = []
    if definition.context_type != context_type:
        errors.append(
            f"Metric {definition.uid!r} is for context {definition.context_type}, "
            f"not {context_type}."
        )
    if not definition.is_active and not allow_inactive:
        errors.append(f"Metric {definition.uid!r} is inactive and takes no new values.")
    return errors


#: ``_definition_errors_for_value`` and ``value_errors_for_definition`` as one SQL
#: condition on a definition ``d``, for the statement that checks and inserts a value in one
#: round trip. The value rules look only at wholeness and sign, bound as ``%(whole)s`` and
#: ``%(non_negative)s``; a table-driven test holds both forms to the same answers.
DEFINITION_ACCEPTS_SQL = (
    f"d.context_type = %(context_type)s AND d.is_active "
    f"AND (d.value_type <> '{ValueType.COUNT}' OR (%(whole)s AND %(non_negative)s)) "
    f"AND (d.storage_unit <> '{StorageUnit.CENTS}' OR %(whole)s)"
)


def value_shape_params(number: Decimal) -> dict[str, bool]:
    """What ``DEFINITION_ACCEPTS_SQL`` needs to know of a value."""
    return {"whole": number == number.to_integral_value(), "non_negative": number >= 0}


def metric_value_build(
    *,
    definition: MetricDefinition | None,
    entity: EntityRef,
    time_unit: str = TimeUnit.DAY,
    metric_date: date,
    value: object,
    timezone: str | None = None,
    metadata: object = None,
    batch_id: UUID | None = None,
    allow_inactive: bool = False,
    metric_uid: str | None = None,
) -> MetricValue:
    """Validate a new value against its definition and entity; return it unsaved.

    Every rule is checked and all failures are raised together as one
    ``ValidationError`` keyed by field (``metric_uid``, ``value``, ``metric_date``,
    ``timezone``, ``_metadata``). ``definition=None`` means the uid was unknown.
    """
    errors, fields, number = _field_errors(
        time_unit=time_unit,
        metric_date=metric_date,
        value=value,
        timezone=timezone,
        metadata=metadata,
    )
    if metric_errors := _definition_errors_for_value(
        definition,
        context_type=entity.context_type,
        metric_uid=metric_uid,
        allow_inactive=allow_inactive,
    ):
        errors = {"metric_uid": metric_errors, **errors}
    if (
        number is not None
        and definition is not None
        and (value_errors := value_errors_for_definition(number, definition))
    ):
        errors["value"] = value_errors
    if errors:
        raise ValidationError(errors)
    return MetricValue(
        metric=definition,
        context_type=entity.context_type,
        entity_uid=entity.uid,
        time_unit=fields.time_unit,
        metric_date=fields.metric_date,
        value=fields.value,
        timezone=fields.timezone or entity.default_timezone,
        metadata=fields.metadata,
        batch_id=batch_id,
    )


def metric_value_save_new(instance: MetricValue) -> MetricValue:
    """Insert a built value. The unique constraint decides a race: a violation becomes
    ``DuplicateValue`` carrying the existing row's uid; any other integrity error is
    re-raised. A savepoint inside a caller's transaction, so the caller can go on after
    a 409."""
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError as exc:
        if violated_constraint(exc, MetricValue) != METRIC_VALUE_UNIQUE_CONSTRAINT:
            raise
        existing = (
            MetricValue.objects.filter(
                entity_uid=instance.entity_uid,
                metric_id=instance.metric_id,
                time_unit=instance.time_unit,
                metric_date=instance.metric_date,
            )
            .values_list("uid", flat=True)
            .first()
        )
        raise DuplicateValue(
            errors={"metric_date": ["A value for this date already exists."]},
            data={"uid": str(existing) if existing else None},
        ) from exc
    return instance


def metric_value_create(**kwargs) -> MetricValue:
    """Validate and insert one value (``metric_value_build`` + ``metric_value_save_new``)."""
    return metric_value_save_new(metric_value_build(**kwargs))


#: Fields of a value that identify it; a PATCH may repeat them but never change them.
VALUE_IMMUTABLE_FIELDS = ("metric_uid", "context_type", "entity_uid", "time_unit", "metric_date")


def _current_identity(instance: MetricValue) -> dict[str, Any]:
    return {
        "metric_uid": instance.metric.uid,
        "context_type": instance.context_type,
        "entity_uid": instance.entity_uid,
        "time_unit": instance.time_unit,
        "metric_date": instance.metric_date,
    }


def metric_value_update(
    *,
    instance: MetricValue,
    value: object = UNSET,
    timezone: object = UNSET,
    metadata: object = UNSET,
    if_match: Collection[int] | None = None,
    **identity: object,
) -> MetricValue:
    """Change the mutable fields of a value, re-validated against its metric.

    ``metadata`` replaces the object whole. Fields left ``UNSET`` are untouched. The
    identifying fields (``VALUE_IMMUTABLE_FIELDS``) may be passed too: the same value as
    stored is ignored, a different one is an error naming the field. All errors are raised
    together and nothing is written when there is any.

    The row is locked first, so the version check (``if_match``: the versions the caller
    accepts, ``None`` for any) and the write see the same row: of concurrent updates
    naming one version, exactly one succeeds. A write that changes nothing keeps the
    version and records no history.
    """
    unknown = set(identity) - set(VALUE_IMMUTABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    with transaction.atomic():
        instance = _locked_value(instance.uid, if_match)
        errors: dict[str, list[str]] = {}
        changes: dict[str, Any] = {}
        current = _current_identity(instance)
        for name, given in identity.items():
            if given is UNSET:
                continue
            if str(given) != str(current[name]):
                errors[name] = [
                    f"{name} cannot be changed (it is {current[name]}); "
                    "delete the value and create a new one instead."
                ]
        if value is not UNSET:
            try:
                number = normalize_value(value)
            except ValidationError as exc:
                errors["value"] = exc.messages
            else:
                if value_errors := value_errors_for_definition(number, instance.metric):
                    errors["value"] = value_errors
                changes["value"] = number
        if timezone is not UNSET:
            if not is_valid_timezone(timezone):
                errors["timezone"] = [f"{timezone!r} is not a known IANA timezone name."]
            changes["timezone"] = timezone
        if metadata is not UNSET:
            try:
                changes["metadata"] = normalize_metadata(metadata)
            except ValidationError as exc:
                errors["_metadata"] = exc.messages
        if errors:
            raise ValidationError(errors)
        changes = {name: new for name, new in changes.items() if getattr(instance, name) != new}
        if changes:
            fields = {**changes, "updated_at": django_timezone.now(), **change_fields()}
            MetricValue.objects.filter(uid=instance.uid).update(**fields, version=F("version") + 1)
            for name, new in fields.items():
                setattr(instance, name, new)
            instance.version += 1
    return instance


def _locked_value(uid: UUID, if_match: Collection[int] | None) -> MetricValue:
    """The value, locked until the transaction ends; ``PreconditionFailed`` unless its
    version is one of ``if_match`` (``None``: any)."""
    instance = (
        MetricValue.objects.select_for_update(of=("self",))
        .select_related("metric")
        .filter(uid=uid)
        .first()
    )
    if instance is None:
        raise ValueNotFound()
    if if_match is not None and instance.version not in if_match:
        raise PreconditionFailed(instance.version)
    return instance


def metric_value_delete(*, instance: MetricValue, if_match: Collection[int] | None = None) -> None:
    """Remove one value (its uid is never reused: new values get new UUIDv7s), when its
    version is one of ``if_match`` (``None``: any)."""
    with transaction.atomic():
        _locked_value(instance.uid, if_match)
        metric_values_delete(MetricValue.objects.filter(uid=instance.uid))


def metric_values_delete(queryset) -> int:
    """Delete the values of ``queryset``, attributed to the current change: their version
    goes up first with the data unchanged (which records nothing), so the history's
    ``delete`` rows name the deleter. Returns how many were deleted."""
    with transaction.atomic():
        queryset.update(version=F("version") + 1, **change_fields())
        deleted, _ = queryset.delete()
    return deleted


# --- Metric definitions ---------------------------------------------------------------------


def _definition_errors(definition: MetricDefinition) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if definition.storage_unit == StorageUnit.CENTS and definition.value_type != ValueType.CURRENCY:
        errors["storage_unit"] = ["storage_unit=cents is only allowed with value_type=currency."]
    return errors


def metric_definition_create(**fields) -> MetricDefinition:
    """Create a definition; a duplicate uid (decided by the unique constraint) is a 409."""
    definition = MetricDefinition(**fields)
    if errors := _definition_errors(definition):
        raise ValidationError(errors)

    def duplicate() -> DuplicateMetric:
        return DuplicateMetric(
            f"A metric definition with uid {definition.uid!r} already exists.",
            errors={"uid": ["A metric definition with this uid already exists."]},
            data={"uid": definition.uid},
        )

    with conflict_on(MetricDefinition, METRIC_DEFINITION_UID_CONSTRAINT, duplicate):
        definition.save(force_insert=True)
    return definition


def metric_definition_update(*, definition: MetricDefinition, **fields) -> MetricDefinition:
    """Change mutable fields only; immutable ones must arrive unchanged (or not at all)."""
    errors: dict[str, list[str]] = {}
    changed = []
    for name, new in fields.items():
        current = getattr(definition, name)
        if name in DEFINITION_IMMUTABLE_FIELDS:
            if new != current:
                errors[name] = [f"{name} cannot be changed once the metric exists."]
            continue
        if name not in DEFINITION_MUTABLE_FIELDS:
            raise TypeError(f"unknown field {name}")
        if new != current:
            setattr(definition, name, new)
            changed.append(name)
    if errors:
        raise ValidationError(errors)
    if changed:
        definition.save(update_fields=[*changed, "updated_at"])
    return definition


def metric_definition_delete(*, definition: MetricDefinition) -> None:
    """Delete a definition no value references. The foreign key decides a race with a
    concurrent insert (checked at commit), so a value can never be orphaned."""
    try:
        with transaction.atomic():
            if MetricValue.objects.filter(metric=definition).exists():
                raise MetricInUse()
            definition.delete()
    except IntegrityError as exc:
        raise MetricInUse() from exc
