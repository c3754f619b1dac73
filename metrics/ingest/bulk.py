"""The bulk endpoint's service: all items in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from django.db import transaction
from uuid6 import uuid7

from ..models import MetricDefinition
from .items import OnConflict
from .portable import BatchOutcome, ingest_portable
from .validation import RowValidator


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
