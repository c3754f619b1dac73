"""Query parameters that several entity-scoped reads share: the ``metric_uid`` list and
the date range whose defaults end today in the organization's timezone."""

from __future__ import annotations

from datetime import date

from rest_framework.exceptions import ValidationError

from .. import selectors
from ..constants import MAX_METRIC_DATE, MIN_METRIC_DATE
from ..models import MetricDefinition
from ..periods import entity_today


def metric_definitions_param(
    raw: str | None, *, context_type: str | None, max_count: int | None = None
) -> list[MetricDefinition] | None:
    """``metric_uid=a,b`` → the definitions, in the order given (duplicates once), in one
    query. Unknown uids, or metrics of another context than ``context_type`` (when given),
    are a 400 listing them. ``None`` when the parameter is absent."""
    if raw is None:
        return None
    uids = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not uids:
        raise ValidationError({"metric_uid": ["Give at least one metric uid."]})
    if max_count is not None and len(uids) > max_count:
        raise ValidationError(
            {"metric_uid": [f"At most {max_count} metric uids; {len(uids)} were given."]}
        )
    found = selectors.metric_definitions_by_uid(uids)
    errors = []
    if unknown := [uid for uid in uids if uid not in found]:
        errors.append(f"Unknown metric uid(s): {', '.join(unknown)}.")
    if foreign := [
        f"{uid} ({found[uid].context_type})"
        for uid in uids
        if context_type and uid in found and found[uid].context_type != context_type
    ]:
        errors.append(f"Metric(s) of another context than {context_type}: {', '.join(foreign)}.")
    if errors:
        raise ValidationError({"metric_uid": errors})
    return [found[uid] for uid in uids]


def date_range_param(params, entity, *, default_start) -> tuple[date, date]:
    """``start_date``/``end_date`` from validated ``params``. Today is the date in the
    timezone of ``entity``'s organization; a missing ``end_date`` is today and a missing
    ``start_date`` is ``default_start(end=..., today=...)``. ``start_date`` after
    ``end_date`` is a 400."""
    today = None
    if "start_date" not in params or "end_date" not in params:
        today = entity_today(entity)
    end = params.get("end_date") or today
    start = params.get("start_date") or default_start(end=end, today=today)
    if start > end:
        raise ValidationError({"start_date": [f"start_date ({start}) is after end_date ({end})."]})
    return start, end


def check_date_bounds(attrs: dict) -> dict:
    """A query serializer's ``validate``: ``start_date`` and ``end_date`` inside the dates
    a value may have (calendar arithmetic past them would overflow)."""
    errors = {
        name: [f"Must be between {MIN_METRIC_DATE} and {MAX_METRIC_DATE}."]
        for name in ("start_date", "end_date")
        if name in attrs and not MIN_METRIC_DATE <= attrs[name] <= MAX_METRIC_DATE
    }
    if errors:
        raise ValidationError(errors)
    return attrs
