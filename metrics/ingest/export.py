"""Export: stored values as items with exactly the import's columns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from django.db import models

from entities.models import Organization, Party

from ..constants import ContextType
from ..selectors import metric_values, metric_values_as_of
from .statements import VALUE_KEY_COLUMNS, VALUE_UPDATE_COLUMNS


def metric_values_for_export(
    *,
    metric_ids: list[int] | None = None,
    time_unit: str | None = None,
    start: date | None = None,
    end: date | None = None,
    organization: Organization | None = None,
    context_type: str | None = None,
    batch_id: UUID | None = None,
    as_of: datetime | None = None,
) -> models.QuerySet:
    """Values to export, as ``values_list`` rows in the order of the unique index (so
    PostgreSQL streams them without sorting).

    ``organization`` keeps its own values and those of its parties (a user's values
    belong to no single organization: export them with ``context_type=USER``).
    ``as_of``: the values as they were at that instant, read from the history.
    """
    source = metric_values() if as_of is None else metric_values_as_of(as_of)
    queryset = source.for_metrics(metric_ids).in_range(start, end)
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
    return queryset.order_by(*VALUE_KEY_COLUMNS).values_list(
        "context_type", *VALUE_KEY_COLUMNS, *VALUE_UPDATE_COLUMNS
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
