"""The shape of a metric value's fields as a body gives them: shared by the API's
serializers and the bulk ingestion path, so one value or five thousand read alike."""

import re
from datetime import date

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exante.fields import StrictCharField, StrictFieldsMixin

from .constants import NUMERIC_STRING_PATTERN, TimeUnit

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@extend_schema_field(OpenApiTypes.DATE)
class StrictDateField(serializers.Field):
    """A JSON string ``YYYY-MM-DD`` naming a real calendar date (``2026-02-30`` is not).

    Range and alignment to the time unit are business rules, checked by the service.
    """

    default_error_messages = {
        "not_a_string": "Must be a date string in the form YYYY-MM-DD.",
        "format": "Must be a date in the form YYYY-MM-DD, not {value!r}.",
        "not_a_date": "{value} is not a calendar date.",
    }

    def to_internal_value(self, data) -> date:
        if not isinstance(data, str):
            self.fail("not_a_string")
        if not _ISO_DATE.match(data):
            self.fail("format", value=data[:40])
        try:
            return date.fromisoformat(data)
        except ValueError:
            self.fail("not_a_date", value=data)

    def to_representation(self, value: date) -> str:
        return value.isoformat()


class RawValueField(serializers.Field):
    """Passes the JSON value through untouched: ``metrics.services.normalize_value`` is
    the one place that decides what a valid number is (booleans, junk strings, NaN and
    out-of-range values are rejected there, with the reason)."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.DOUBLE)
class NumberSchema(RawValueField):
    pass


@extend_schema_field(
    {
        "oneOf": [{"type": "number"}, {"type": "string", "pattern": NUMERIC_STRING_PATTERN}],
        "description": 'A JSON number or a numeric string such as `"1234.50"` (ASCII '
        "digits, optional sign and fraction; no spaces or exponent).",
    }
)
class ValueInputField(RawValueField):
    pass


class ParsedJSONField(serializers.JSONField):
    """Any JSON value, taken as the body's parser produced it.

    DRF's field re-serializes the input with ``json.dumps`` to check it, which fails on the
    ``Decimal`` numbers our parser produces (``{"rate": 0.5}``); the body already is JSON,
    and the service that reads the value decides what it may be.
    """

    def to_internal_value(self, data):
        return data


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(ParsedJSONField):
    """Any JSON here; that it is an object of at most 16 KiB is checked by the service
    (``normalize_metadata`` also turns the parser's decimals into plain numbers)."""


def metadata_field(**kwargs) -> MetadataField:
    return MetadataField(
        help_text="A JSON object (calculation context for audit), at most 16 KiB "
        "serialized, 64 levels deep, finite numbers only, no U+0000 in any key or string "
        "(PostgreSQL's jsonb cannot store it). `null` or omitted means `{}`.",
        **kwargs,
    )


_TIME_UNIT_HELP = "`day` (any date), `month` (first of a month) or `year` (January 1st)."


class MetricValueCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    """Body of ``POST /api/metrics/values/{context_type}/{entity_uid}`` (shape only)."""

    metric_uid = StrictCharField(max_length=64, help_text="uid of the metric definition.")
    time_unit = serializers.ChoiceField(
        choices=TimeUnit.choices, default=TimeUnit.DAY, help_text=_TIME_UNIT_HELP
    )
    metric_date = StrictDateField(
        help_text="`YYYY-MM-DD`, between 1900-01-01 and 2199-12-31, aligned to `time_unit`."
    )
    value = ValueInputField(
        help_text="A JSON number or numeric string, finite, |value| < 10^18; more than 6 "
        "decimals round half-even. Counts are whole and ≥ 0; `cents` metrics take whole "
        "numbers. Booleans, null, NaN and Infinity are rejected."
    )
    timezone = StrictCharField(
        max_length=64,
        required=False,
        allow_null=True,
        help_text="IANA timezone name; omitted or null means the timezone of the entity's "
        "organization (a user's own timezone for USER values).",
    )
    _metadata = metadata_field(required=False, allow_null=True)
