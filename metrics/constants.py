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
