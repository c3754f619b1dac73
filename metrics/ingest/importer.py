"""An import run: batches, each in its own transaction, progress and errors reported as
they come; a re-run finishes an interrupted one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from django.db import transaction
from uuid6 import uuid7

from exante.db import is_postgresql

from ..models import MetricDefinition
from .batching import batches
from .items import ItemResult, OnConflict, Status, new_counts
from .portable import ingest_portable
from .postgres import run_postgresql
from .validation import RowValidator


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
            run_postgresql(self, rows, validator, summary)
            return
        for batch in batches(rows, self.batch_size):
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
