"""``manage.py import_metric_values FILE``: backfill metric values from CSV or JSON Lines."""

import csv
import sys
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from exante.observability import record_ingested
from metrics.changes import change_context
from metrics.constants import CHANGE_REASON_MAX_LENGTH, ChangeSource
from metrics.ingest.importer import Importer
from metrics.ingest.items import (
    ANNOTATION_FIELDS,
    FIELDS,
    OnConflict,
    Status,
    format_errors,
    raw_cells,
)
from metrics.ingest.sources import SourceError, detect_format, item_rows, open_text

HELP = """Import metric values from a CSV or JSON Lines file (or - for stdin).

Columns (CSV header, or JSON keys): context_type, entity_uid, metric_uid, time_unit,
metric_date, value, timezone, _metadata -- as in one item of the bulk endpoint. Every row
passes the checks of a single create. An empty CSV cell means "not given" (time_unit
defaults to day, timezone to the entity's organization's, _metadata to {}); _metadata is a
JSON object in its cell.

The file is read as a stream, in batches; each batch is one transaction. Re-running a
file is a no-op (rows come back unchanged), and a run that was interrupted can simply be
started again (pass --batch-id with the id it printed to keep one batch id for revert).

Every row this run CREATES records the run's batch_id (printed at the start and the end);
rows it UPDATES keep the batch_id of the write that created them, so `revert_batch`
deletes exactly what a run created and never restores updated values.

Bad rows are reported with their line number and the reason and do not stop the run;
--errors-out writes them to a CSV that can be fixed and imported again as it is. The
exit status is 1 when any row failed. Files are UTF-8: a line holding bytes that are not
is a bad row too, written to --errors-out with each such byte as \\xNN.
"""


class Command(BaseCommand):
    help = HELP
    stealth_options = ("stdin",)

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        kwargs["formatter_class"] = RawDescriptionHelpFormatter
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to a .csv or .jsonl file (.gz too), or - for stdin.")
        parser.add_argument(
            "--format", choices=["csv", "jsonl"], help="Override the format the name implies."
        )
        parser.add_argument(
            "--on-conflict",
            choices=OnConflict.values,
            default=OnConflict.UPDATE,
            help="When a value for the key exists: update it (default; identical rows are "
            "left untouched and reported unchanged), skip the row, or report it as an error.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Do all the work in one transaction and roll it back: the report is that "
            "of a real run, nothing is kept.",
        )
        parser.add_argument(
            "--batch-size", type=int, default=20_000, help="Rows per transaction (20000)."
        )
        parser.add_argument(
            "--allow-inactive",
            action="store_true",
            help="Accept values for inactive (retired) metrics, for backfilling history.",
        )
        parser.add_argument(
            "--batch-id",
            type=UUID,
            help="Record this batch id instead of a new one (to resume an interrupted run).",
        )
        parser.add_argument(
            "--errors-out", metavar="FILE", help="Write the failed rows to this CSV file."
        )
        parser.add_argument(
            "--engine",
            choices=["auto", "portable", "postgresql"],
            default="auto",
            help="auto: the COPY fast path on PostgreSQL, the portable one elsewhere.",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument(
            "--reason",
            help=f"Why, recorded in the value history of every row the run changes (at most "
            f"{CHANGE_REASON_MAX_LENGTH} characters).",
        )

    def handle(self, *args, **options):
        if not 1 <= options["batch_size"] <= 100_000:
            raise CommandError("--batch-size must be between 1 and 100000.")
        reason = options["reason"]
        if reason is not None and len(reason) > CHANGE_REASON_MAX_LENGTH:
            raise CommandError(f"--reason is at most {CHANGE_REASON_MAX_LENGTH} characters.")
        path = options["file"]
        try:
            file_format = detect_format(path, options["format"])
            stream, position, total = open_text(path, stdin=options.get("stdin"))
        except (SourceError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        errors_file = errors_writer = None
        if options["errors_out"]:
            errors_file = open(options["errors_out"], "w", newline="", encoding="utf-8")  # noqa: SIM115
            errors_writer = csv.DictWriter(errors_file, fieldnames=[*FIELDS, *ANNOTATION_FIELDS])
            errors_writer.writeheader()
        err = self.stderr

        def on_error(line, item, errors):
            reason = format_errors(errors or {})
            bar.write(f"line {line}: {reason}", file=err._out)
            if errors_writer is not None:
                errors_writer.writerow({**raw_cells(item), "_line": line, "_error": reason})

        show = not options["no_progress"] and err.isatty()
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=not show,
            file=err._out,
            dynamic_ncols=True,
        )
        rows_done = 0
        last_position = 0

        def on_progress(rows):
            nonlocal rows_done, last_position
            rows_done += rows
            now = position()
            bar.update(max(now - last_position, 0))
            last_position = now
            bar.set_postfix(rows=rows_done, refresh=False)

        importer = Importer(
            on_conflict=options["on_conflict"],
            dry_run=options["dry_run"],
            allow_inactive=options["allow_inactive"],
            batch_id=options["batch_id"],
            batch_size=options["batch_size"],
            engine=options["engine"],
            on_error=on_error,
            on_progress=on_progress,
        )
        verb = "Checking (dry run)" if options["dry_run"] else "Importing"
        self.stdout.write(f"{verb} {path} as {file_format}; batch_id {importer.batch_id}")
        try:
            with stream, change_context(source=ChangeSource.IMPORT, reason=reason):
                summary = importer.run(item_rows(file_format, stream))
        except SourceError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
            if errors_file is not None:
                errors_file.close()
        counts = summary.counts
        if not options["dry_run"]:
            # Visible on /metrics when the command shares PROMETHEUS_MULTIPROC_DIR with
            # the app servers (docs/deploy.md).
            for outcome in ("created", "updated"):
                record_ingested(counts[outcome], source="import", outcome=outcome)
        rate = summary.rows / summary.seconds if summary.seconds else 0
        self.stdout.write(
            f"{'Dry run: ' if options['dry_run'] else ''}{summary.rows} rows in "
            f"{summary.seconds:.1f} s ({rate:,.0f} rows/s, {summary.engine} engine): "
            + ", ".join(f"{counts[s]} {s}" for s in Status.ALL)
            + f". batch_id {summary.batch_id}"
            + (" (nothing was kept)" if options["dry_run"] else "")
        )
        if summary.failed:
            where = f"; see {options['errors_out']}" if options["errors_out"] else ""
            raise CommandError(f"{summary.failed} row(s) failed{where}.", returncode=1)
        sys.stdout.flush()
