"""``manage.py export_metric_values``: stream values to CSV or JSON Lines."""

import csv
from datetime import datetime
from uuid import UUID

import orjson
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from entities.models import Organization
from metrics.constants import ContextType, TimeUnit
from metrics.ingest.export import export_items, metric_values_for_export, plain_decimal
from metrics.ingest.items import FIELDS
from metrics.models import MetricDefinition
from metrics.selectors import as_of_instant

from ._shared import OperatorCommand, parse_date

HELP = """Export metric values to CSV or JSON Lines, streamed (flat memory at any size).

The columns are those `import_metric_values` reads, so an export imports back as it is
(a re-import of it into the same database reports every row unchanged). Filters are
those of the value list endpoint -- --metric-uid (comma-separated), --time-unit,
--start-date/--end-date (inclusive) -- plus --organization (its own values and its
parties'), --context-type, --entity-uid and --batch-id. Without --time-unit every unit is
exported. Rows come in the order of the unique index: entity, metric, unit, date.
--as-of INSTANT (ISO 8601 with Z or an offset) writes the table as it was at that instant,
from the value history.
"""


def _instant(text: str) -> datetime:
    try:
        return as_of_instant(text)
    except ValueError as exc:
        raise CommandError(f"--as-of: {exc}") from None


class Command(OperatorCommand):
    help = HELP

    def add_arguments(self, parser):
        parser.add_argument(
            "-o", "--output", default="-", help="File to write (default: standard output)."
        )
        parser.add_argument(
            "--format", choices=["csv", "jsonl"], help="Default: from --output's name, else csv."
        )
        parser.add_argument("--metric-uid", help="Comma-separated metric uids.")
        parser.add_argument("--time-unit", choices=TimeUnit.values)
        parser.add_argument("--start-date", type=parse_date, help="YYYY-MM-DD, inclusive.")
        parser.add_argument("--end-date", type=parse_date, help="YYYY-MM-DD, inclusive.")
        parser.add_argument("--organization", help="uid of an organization.")
        parser.add_argument("--context-type", choices=ContextType.values)
        parser.add_argument(
            "--batch-id",
            type=UUID,
            help="Only rows created by this batch (with --as-of: the versions it wrote).",
        )
        parser.add_argument(
            "--chunk-size", type=int, default=5000, help="Rows fetched per round trip."
        )
        parser.add_argument(
            "--as-of",
            type=_instant,
            help="An instant with Z or an offset (2026-03-15T10:00:00Z): export the values "
            "as they were then.",
        )

    def handle(self, *args, **options):
        definitions = dict(MetricDefinition.objects.values_list("uid", "pk"))
        metric_ids = None
        if options["metric_uid"]:
            uids = [u.strip() for u in options["metric_uid"].split(",") if u.strip()]
            unknown = [u for u in uids if u not in definitions]
            if unknown or not uids:
                raise CommandError(f"Unknown metric uid(s): {', '.join(unknown) or '(none)'}.")
            metric_ids = [definitions[u] for u in uids]
        start, end = options["start_date"], options["end_date"]
        if start and end and start > end:
            raise CommandError(f"--start-date ({start}) is after --end-date ({end}).")
        organization = None
        if options["organization"]:
            try:
                organization = Organization.objects.get(uid=options["organization"])
            except (Organization.DoesNotExist, ValidationError, ValueError) as exc:
                raise CommandError(f"No organization with uid {options['organization']}.") from exc
        queryset = metric_values_for_export(
            metric_ids=metric_ids,
            time_unit=options["time_unit"],
            start=start,
            end=end,
            organization=organization,
            context_type=options["context_type"],
            batch_id=options["batch_id"],
            as_of=options["as_of"],
        )
        output = options["output"]
        file_format = options["format"] or ("jsonl" if output.endswith(".jsonl") else "csv")
        names = {pk: uid for uid, pk in definitions.items()}
        # A server-side cursor on PostgreSQL: memory stays flat whatever the table size.
        rows = export_items(queryset.iterator(chunk_size=options["chunk_size"]), names)
        stream = (
            self.stdout._out if output == "-" else open(output, "w", newline="", encoding="utf-8")  # noqa: SIM115
        )
        count = 0
        try:
            if file_format == "csv":
                writer = csv.writer(stream)
                writer.writerow(FIELDS)
                for item in rows:
                    meta = item["_metadata"]
                    item["value"] = plain_decimal(item["value"])
                    item["_metadata"] = orjson.dumps(meta).decode() if meta else ""
                    writer.writerow([item[name] for name in FIELDS])
                    count += 1
            else:
                from exante.json import dumps

                for item in rows:
                    stream.write(dumps(item).decode())
                    stream.write("\n")
                    count += 1
        finally:
            if output != "-":
                stream.close()
        self.stderr.write(f"Exported {count} value(s) as {file_format}.")
