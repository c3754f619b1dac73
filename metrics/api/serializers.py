"""Shape-only serializers of the metrics API; business rules live in ``metrics.services``."""

from datetime import UTC, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models.functions import Cast
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from exante.fields import StrictBooleanField, StrictCharField, StrictFieldsMixin
from exante.filters import StrictBooleanField as StrictBooleanFormField

from ..constants import (
    METRIC_UID_PATTERN,
    RESERVED_METRIC_UIDS,
    ChangeSource,
    ContextType,
    Operation,
    PeriodDefinition,
    StorageUnit,
    TimeUnit,
    ValueType,
)
from ..fields import (
    MetadataField,
    NumberSchema,
    StrictDateField,
    ValueInputField,
    metadata_field,
)
from ..models import MetricDefinition, MetricValue
from ..selectors import as_of_instant


class MetricDefinitionSerializer(serializers.ModelSerializer):
    """A metric definition as the API shows it."""

    class Meta:
        model = MetricDefinition
        fields = [
            "uid",
            "name",
            "context_type",
            "description",
            "formula",
            "value_type",
            "storage_unit",
            "is_snapshot",
            "period_definition",
            "aggregation",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MetricDefinitionCreateSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    uid = serializers.RegexField(
        METRIC_UID_PATTERN,
        max_length=64,
        help_text="Slug `^[a-z][a-z0-9_]{1,63}$`; unique and immutable. "
        "`values` and `bulk` are reserved.",
        error_messages={
            "invalid": "uid must start with a lowercase letter and contain only lowercase "
            "letters, digits and underscores (2 to 64 characters)."
        },
    )
    name = StrictCharField(max_length=200, min_length=1)
    description = StrictCharField(max_length=10_000, required=False, allow_blank=True, default="")
    formula = StrictCharField(
        max_length=10_000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Documentation only; never evaluated.",
    )

    is_snapshot = StrictBooleanField(required=False, default=False)
    is_active = StrictBooleanField(required=False, default=True)

    class Meta:
        model = MetricDefinition
        fields = [
            "uid",
            "name",
            "context_type",
            "description",
            "formula",
            "value_type",
            "storage_unit",
            "is_snapshot",
            "period_definition",
            "aggregation",
            "is_active",
        ]
        extra_kwargs = {
            "aggregation": {
                "help_text": "How day values combine into longer periods in a series. "
                "Default when not given: `last` if `is_snapshot`, else `average` for "
                "`percentage`, `ratio` and `days`, else `sum`. Immutable.",
                "allow_blank": False,
            }
        }

    def validate_uid(self, value: str) -> str:
        if value in RESERVED_METRIC_UIDS:
            raise serializers.ValidationError(f"{value!r} is reserved and cannot be a metric uid.")
        return value


class MetricDefinitionUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    """PATCH body: mutable fields, plus immutable ones accepted only with their current
    value (a different value is a 400 naming the field)."""

    name = StrictCharField(max_length=200, min_length=1, required=False)
    description = StrictCharField(max_length=10_000, required=False, allow_blank=True)
    formula = StrictCharField(max_length=10_000, required=False, allow_blank=True)
    is_active = StrictBooleanField(required=False)
    uid = StrictCharField(required=False, help_text="Immutable.")
    context_type = serializers.ChoiceField(
        choices=MetricDefinition._meta.get_field("context_type").choices,
        required=False,
        help_text="Immutable.",
    )
    value_type = serializers.ChoiceField(
        choices=MetricDefinition._meta.get_field("value_type").choices,
        required=False,
        help_text="Immutable.",
    )
    storage_unit = serializers.ChoiceField(
        choices=MetricDefinition._meta.get_field("storage_unit").choices,
        required=False,
        help_text="Immutable.",
    )
    is_snapshot = StrictBooleanField(required=False, help_text="Immutable.")
    period_definition = serializers.ChoiceField(
        choices=MetricDefinition._meta.get_field("period_definition").choices,
        required=False,
        help_text="Immutable.",
    )
    aggregation = serializers.ChoiceField(
        choices=MetricDefinition._meta.get_field("aggregation").choices,
        required=False,
        help_text="Immutable.",
    )


# --- Metric values ---------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.BOOL)
class QueryBooleanField(serializers.Field):
    """A query-string boolean: ``true``/``false``/``1``/``0`` only; anything else is a 400
    naming the parameter."""

    default_error_messages = {"invalid": "Must be one of true, false, 1, 0."}

    def to_internal_value(self, data) -> bool:
        try:
            parsed = StrictBooleanFormField(required=False).clean(data)
        except DjangoValidationError:
            self.fail("invalid")
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value):
        return value


class MetricValueUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    """Body of ``PATCH /api/metrics/values/{value_uid}`` (shape only).

    ``value``, ``timezone`` and ``_metadata`` (replaced whole) change; the identifying
    fields may be sent only with their current value.
    """

    value = ValueInputField(required=False, help_text="New value, re-validated against the metric.")
    timezone = StrictCharField(max_length=64, required=False, help_text="IANA timezone name.")
    metric_uid = StrictCharField(max_length=64, required=False, help_text="Immutable.")
    context_type = serializers.ChoiceField(
        choices=ContextType.choices, required=False, help_text="Immutable."
    )
    entity_uid = serializers.UUIDField(required=False, help_text="Immutable.")
    time_unit = serializers.ChoiceField(
        choices=TimeUnit.choices, required=False, help_text="Immutable."
    )
    metric_date = StrictDateField(required=False, help_text="Immutable.")
    _metadata = metadata_field(required=False, allow_null=True)


AS_OF_HELP = (
    "An ISO 8601 instant with `Z` or an offset (`2026-03-15T10:00:00Z`): answer with what "
    "the service held then — a value created later is absent, one changed later shows its "
    "earlier `value` and `version`, one deleted later is present. A bare date, a time "
    "without offset or an instant in the future is a 400."
)


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantField(serializers.Field):
    """An aware instant, not in the future (the ``as_of`` of a read)."""

    def to_internal_value(self, data) -> datetime:
        if not isinstance(data, str) or len(data) > 64:
            raise serializers.ValidationError(
                "Enter an ISO 8601 instant with Z or an offset, like 2026-03-15T10:00:00Z."
            )
        try:
            return as_of_instant(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value):
        return value.isoformat()


class MetricValueRetrieveQuerySerializer(serializers.Serializer):
    """Query parameters of the single value's GET."""

    as_of = InstantField(required=False, help_text=AS_OF_HELP)


class MetricValueListQuerySerializer(serializers.Serializer):
    """Query parameters of the value list (shape only; unknown parameters are ignored)."""

    metric_uid = serializers.CharField(
        required=False,
        help_text="Comma-separated metric uids. An unknown uid, or one of another "
        "context type, is a 400 that lists it. Omitted: every metric.",
    )
    time_unit = serializers.ChoiceField(
        choices=TimeUnit.choices,
        default=TimeUnit.DAY,
        help_text="Only values of this unit.",
    )
    start_date = StrictDateField(
        required=False,
        help_text="Inclusive. Default: 90 days before today, where today is the date in the "
        "timezone of the entity's organization (a user's own timezone for USER). Ignored "
        "with `latest=true`.",
    )
    end_date = StrictDateField(
        required=False,
        help_text="Inclusive. Default: today in the organization's timezone. A `start_date` "
        "after the (given or default) `end_date` is a 400. Ignored with `latest=true`.",
    )
    latest = QueryBooleanField(
        required=False,
        default=False,
        help_text="`true`: only the most recent value of each metric (within `time_unit` "
        "and `metric_uid`), whatever its date. `true`/`false`/`1`/`0`.",
    )
    include_metadata = QueryBooleanField(
        required=False,
        default=False,
        help_text="`true`: include each value's `_metadata`; otherwise the key is left out. "
        "`true`/`false`/`1`/`0`.",
    )
    as_of = InstantField(required=False, help_text=AS_OF_HELP)


class MetricValueSerializer(serializers.Serializer):
    """A metric value as the API shows it, with its definition's facts filled in.

    ``to_representation`` is written out by hand: the list endpoint renders up to 1,000
    rows per page, and the generic field machinery would be most of the response time.
    """

    uid = serializers.UUIDField(read_only=True)
    metric_uid = serializers.CharField(read_only=True)
    metric_name = serializers.CharField(read_only=True)
    period_definition = serializers.ChoiceField(choices=PeriodDefinition.choices, read_only=True)
    value_type = serializers.ChoiceField(choices=ValueType.choices, read_only=True)
    storage_unit = serializers.ChoiceField(choices=StorageUnit.choices, read_only=True)
    context_type = serializers.ChoiceField(choices=ContextType.choices, read_only=True)
    entity_uid = serializers.UUIDField(read_only=True)
    time_unit = serializers.ChoiceField(choices=TimeUnit.choices, read_only=True)
    metric_date = serializers.DateField(read_only=True)
    value = NumberSchema(read_only=True, help_text="A JSON number (exact decimal).")
    timezone = serializers.CharField(read_only=True)
    version = serializers.IntegerField(
        read_only=True,
        help_text="1 when created, +1 on every change that alters a field; the `ETag` of "
        "the value, for `If-Match`.",
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    # Not ``read_only``: drf-spectacular lists every read-only field as required, and lists
    # leave this key out unless asked. Output-only serializer, so ``required=False`` only
    # changes the documentation.
    _metadata = MetadataField(
        required=False,
        help_text="Calculation context. Always present on a single value; in lists only "
        "with `include_metadata=true`.",
    )

    def to_representation(self, instance: MetricValue) -> dict:
        definition = instance.metric
        return value_row(
            {
                "uid": instance.uid,
                "metric__uid": definition.uid,
                "metric__name": definition.name,
                "metric__period_definition": definition.period_definition,
                "metric__value_type": definition.value_type,
                "metric__storage_unit": definition.storage_unit,
                "context_type": instance.context_type,
                "entity_uid": instance.entity_uid,
                "time_unit": instance.time_unit,
                "metric_date": instance.metric_date,
                "value": instance.value,
                "timezone": instance.timezone,
                "version": instance.version,
                "created_at_text": instance.created_at,
                "updated_at_text": instance.updated_at,
                "metadata": instance.metadata,
            },
            include_metadata=True,
        )


#: Timestamps read as text: parsing two timestamptz per row into datetimes and formatting
#: them back was the largest cost of a 1,000-row page (the database's text needs only a
#: separator and a ``Z``; see ``_timestamp``).
TIMESTAMP_TEXT_ANNOTATIONS = {
    "created_at_text": Cast("created_at", models.CharField()),
    "updated_at_text": Cast("updated_at", models.CharField()),
}

#: The columns ``value_row`` reads, for ``QuerySet.annotate(**TIMESTAMP_TEXT_ANNOTATIONS)
#: .values()``.
VALUE_ROW_COLUMNS = (
    "uid",
    "metric__uid",
    "metric__name",
    "metric__period_definition",
    "metric__value_type",
    "metric__storage_unit",
    "context_type",
    "entity_uid",
    "time_unit",
    "metric_date",
    "value",
    "timezone",
    "version",
    "created_at_text",
    "updated_at_text",
)

_UTC_TEXT_SUFFIXES = ("+00:00", "+00")


def _timestamp(moment: datetime | str) -> str:
    """ISO 8601 in UTC with a ``Z``, the form DRF's DateTimeField writes.

    Takes a datetime, or the text the database casts a timestamp to, in the connection's
    UTC: PostgreSQL writes ``2026-03-15 10:00:00.5+00``, SQLite ``2026-03-15 10:00:00.5``.
    """
    if isinstance(moment, datetime):
        text = moment.astimezone(UTC).isoformat()
    else:
        text = moment.replace(" ", "T", 1)
        for suffix in _UTC_TEXT_SUFFIXES:
            if text.endswith(suffix):
                text = text[: -len(suffix)]
                break
        else:
            if "+" in text[10:] or "-" in text[10:]:
                # Any other offset: let datetime do the arithmetic.
                return _timestamp(datetime.fromisoformat(text))
        # PostgreSQL trims trailing zeros of the fraction (``.25``); Python writes six
        # digits (``.250000``). Same width keeps list and detail identical and sortable.
        if (dot := text.find(".", 19)) != -1:
            text = text[: dot + 1] + text[dot + 1 :].ljust(6, "0")
        return text + "Z"
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def value_row(row: dict, *, include_metadata: bool) -> dict:
    """A ``values()`` row (see ``VALUE_ROW_COLUMNS``, plus ``metadata``) → API dict."""
    out = {
        "uid": str(row["uid"]),
        "metric_uid": row["metric__uid"],
        "metric_name": row["metric__name"],
        "period_definition": row["metric__period_definition"],
        "value_type": row["metric__value_type"],
        "storage_unit": row["metric__storage_unit"],
        "context_type": row["context_type"],
        "entity_uid": str(row["entity_uid"]),
        "time_unit": row["time_unit"],
        "metric_date": row["metric_date"].isoformat(),
        # A Decimal: the renderer writes it as a JSON number without a float round trip.
        "value": row["value"],
        "timezone": row["timezone"],
        "version": row["version"],
        "created_at": _timestamp(row["created_at_text"]),
        "updated_at": _timestamp(row["updated_at_text"]),
    }
    if include_metadata:
        out["_metadata"] = row["metadata"]
    return out


class UserRefSerializer(serializers.Serializer):
    uid = serializers.UUIDField()
    email = serializers.EmailField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A change made through the API",
            value={
                "version": 2,
                "operation": "update",
                "value": 1300,
                "timezone": "UTC",
                "_metadata": {},
                "recorded_at": "2026-03-16T09:12:03.120311Z",
                "recorded_by": {
                    "uid": "7d1c2f4e-5a8b-4c3d-9e0f-1a2b3c4d5e6f",
                    "email": "ana@example.com",
                },
                "api_key_uid": None,
                "source": "api",
                "batch_id": None,
                "reason": "corrected after the ledger closed",
            },
        ),
        OpenApiExample(
            "A create made by an import run",
            value={
                "version": 1,
                "operation": "create",
                "value": 1250,
                "timezone": "UTC",
                "_metadata": {},
                "recorded_at": "2026-03-15T10:00:00.123456Z",
                "recorded_by": None,
                "api_key_uid": None,
                "source": "import",
                "batch_id": "01964a8e-7a4f-7c1e-9d2b-3f4a5b6c7d8e",
                "reason": "March backfill",
            },
        ),
    ]
)
class MetricValueHistorySerializer(serializers.Serializer):
    """One version of a value: the state after the change and who made it."""

    version = serializers.IntegerField(help_text="The version the change produced.")
    operation = serializers.ChoiceField(choices=Operation.choices)
    value = NumberSchema(help_text="After the change (for `delete`: the state deleted).")
    timezone = serializers.CharField()
    _metadata = MetadataField()
    recorded_at = serializers.DateTimeField(
        help_text="When the change was recorded: UTC with microseconds."
    )
    recorded_by = UserRefSerializer(
        allow_null=True, help_text="The acting user; `null` for commands and SQL."
    )
    api_key_uid = serializers.UUIDField(allow_null=True, help_text="The API key used, if any.")
    source = serializers.ChoiceField(choices=ChangeSource.choices)
    batch_id = serializers.UUIDField(
        allow_null=True, help_text="The bulk call's or import run's batch id."
    )
    reason = serializers.CharField(allow_null=True, help_text="`X-Change-Reason`, if given.")

    def to_representation(self, instance) -> dict:
        user = self.context.get("users", {}).get(instance.recorded_by_uid)
        return {
            "version": instance.version,
            "operation": instance.operation,
            "value": instance.value,
            "timezone": instance.timezone,
            "_metadata": instance.metadata,
            "recorded_at": _microseconds(instance.recorded_at),
            "recorded_by": {"uid": str(user.uid), "email": user.email} if user else None,
            "api_key_uid": str(instance.api_key_uid) if instance.api_key_uid else None,
            "source": instance.source,
            "batch_id": str(instance.batch_id) if instance.batch_id else None,
            "reason": instance.reason,
        }


def _microseconds(moment: datetime) -> str:
    """``2026-03-15T10:00:00.123456Z``: always six digits of fraction."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
