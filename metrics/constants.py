"""Enums of the metrics domain, exact and case-sensitive."""

from datetime import date
from decimal import Decimal

from django.db import models


class ContextType(models.TextChoices):
    ORGANIZATION = "ORGANIZATION", "Organization"
    PARTY = "PARTY", "Party"
    USER = "USER", "User"


class ValueType(models.TextChoices):
    CURRENCY = "currency", "Currency"
    PERCENTAGE = "percentage", "Percentage"
    DAYS = "days", "Days"
    COUNT = "count", "Count"
    RATIO = "ratio", "Ratio"


class StorageUnit(models.TextChoices):
    RAW = "raw", "Raw"
    CENTS = "cents", "Cents"


class PeriodDefinition(models.TextChoices):
    AS_OF_DATE = "as_of_date", "As of date"
    TRAILING_30_DAYS = "trailing_30_days", "Trailing 30 days"
    CALENDAR_MONTH = "calendar_month", "Calendar month"
    MONTH_TO_DATE = "month_to_date", "Month to date"


class TimeUnit(models.TextChoices):
    DAY = "day", "Day"
    MONTH = "month", "Month"
    YEAR = "year", "Year"


class Aggregation(models.TextChoices):
    """How a metric's day values combine into a longer period."""

    SUM = "sum", "Sum"
    LAST = "last", "Last"
    AVERAGE = "average", "Average"
    MIN = "min", "Minimum"
    MAX = "max", "Maximum"


#: Value types that are already a rate or a duration: their periods average, never add up.
_AVERAGED_VALUE_TYPES = frozenset({ValueType.PERCENTAGE, ValueType.RATIO, ValueType.DAYS})


def default_aggregation(*, value_type: str, is_snapshot: bool) -> str:
    """The aggregation a definition gets when none is given: a level keeps its last
    value, a rate or duration averages, anything else (a flow, a count) adds up."""
    if is_snapshot:
        return Aggregation.LAST
    if value_type in _AVERAGED_VALUE_TYPES:
        return Aggregation.AVERAGE
    return Aggregation.SUM


class Bucket(models.TextChoices):
    """The periods a series combines values into (weeks are ISO, labelled by Monday)."""

    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"
    YEAR = "year", "Year"


#: Slug rule for metric definition uids, and the words the URL space reserves.
METRIC_UID_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
RESERVED_METRIC_UIDS = frozenset({"values", "bulk"})

#: Values are NUMERIC(24, 6): |value| < 10^18 and six decimals (rounded half-even past that).
VALUE_MAX_DIGITS = 24
VALUE_DECIMAL_PLACES = 6
VALUE_LIMIT = Decimal(10) ** 18
#: The only text a value may be given as: ASCII digits, an optional sign and fraction; no
#: spaces, no exponent, no other script's digits. The OpenAPI schema publishes this pattern.
NUMERIC_STRING_PATTERN = r"^[+-]?[0-9]+(\.[0-9]+)?$"
VALUE_QUANTUM = Decimal(1).scaleb(-VALUE_DECIMAL_PLACES)

MIN_METRIC_DATE = date(1900, 1, 1)
MAX_METRIC_DATE = date(2199, 12, 31)

#: Serialized size limit of a value's ``_metadata``.
METADATA_MAX_BYTES = 16 * 1024

#: Names of database constraints the services map to domain errors.
METRIC_VALUE_UNIQUE_CONSTRAINT = "metricvalue_entity_metric_unit_date_uniq"
METRIC_DEFINITION_UID_CONSTRAINT = "metricdefinition_uid_uniq"


class Operation(models.TextChoices):
    """What a change to a value did (its history records one per change)."""

    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"


class ChangeSource(models.TextChoices):
    """Which path made a change. ``system`` is a write that named no path: SQL by hand."""

    API = "api", "API"
    BULK = "bulk", "Bulk"
    IMPORT = "import", "Import"
    ADMIN = "admin", "Admin"
    REVERT = "revert", "Revert"
    SYSTEM = "system", "System"


#: Longest change reason (``X-Change-Reason``, ``--reason``, the admin's field).
CHANGE_REASON_MAX_LENGTH = 500
