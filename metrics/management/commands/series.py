"""``manage.py series``: an entity's metrics by bucket, as a table or CSV, for operators."""

import csv
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from metrics.constants import Bucket, ContextType
from metrics.periods import entity_today, year_before
from metrics.selectors import entity_get
from metrics.series import COMPARE_MODES, FILL_MODES, metric_series, series_range_errors

from ._shared import OperatorCommand, definitions_for, parse_date

HELP = """Print an entity's metrics combined into buckets, as the series endpoint answers them
(the same selector), one row per metric and bucket.

    manage.py series --entity UID --metric total_ar,dso --bucket month
    manage.py series --entity ORG_UID --metric party_total_ar --across-parties --format csv

The entity's context type is the metrics' (they must share one); with --across-parties the
entity is an organization and PARTY metrics roll up its active parties. Dates default to
the year up to today in the organization's timezone. No visibility rules apply: this is an
operator's tool.
"""

COLUMNS = ("metric_uid", "start", "end", "value", "count", "expected", "coverage", "source")
COMPARE_COLUMNS = ("compare_value", "change", "change_pct")


def text(value) -> str:
    """A cell: numbers without trailing zeros, nothing for null."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


class Command(OperatorCommand):
    help = HELP

    def add_arguments(self, parser):
        parser.add_argument("--entity", required=True, help="uid of the entity.")
        parser.add_argument("--metric", required=True, help="Comma-separated metric uids.")
        parser.add_argument("--bucket", choices=Bucket.values, default=Bucket.MONTH)
        parser.add_argument("--start", type=parse_date, help="YYYY-MM-DD, inclusive.")
        parser.add_argument("--end", type=parse_date, help="YYYY-MM-DD, inclusive.")
        parser.add_argument("--fill", choices=FILL_MODES)
        parser.add_argument("--compare", choices=COMPARE_MODES)
        parser.add_argument(
            "--across-parties",
            action="store_true",
            help="Roll the organization's active parties up (PARTY metrics).",
        )
        parser.add_argument("--format", choices=["table", "csv"], default="table")

    def handle(self, *args, **options):
        definitions = definitions_for(options["metric"])
        contexts = {definition.context_type for definition in definitions}
        if len(contexts) > 1:
            raise CommandError("The metrics belong to different context types; ask one at a time.")
        across = options["across_parties"]
        if across and contexts != {ContextType.PARTY}:
            raise CommandError("--across-parties takes PARTY metrics.")
        context_type = ContextType.ORGANIZATION if across else contexts.pop()
        try:
            entity = entity_get(context_type=context_type, entity_uid=options["entity"])
        except (ValidationError, ValueError) as exc:  # a malformed uid: as an unknown one
            raise CommandError(f"No {context_type} with uid {options['entity']}.") from exc
        if entity is None:
            raise CommandError(f"No {context_type} with uid {options['entity']}.")
        end = options["end"] or entity_today(entity)
        start = options["start"] or year_before(end)
        if errors := series_range_errors(start, end, options["bucket"]):
            raise CommandError(
                " ".join(message for messages in errors.values() for message in messages)
            )
        data = metric_series(
            context_type=context_type,
            entity=entity,
            definitions=definitions,
            bucket=options["bucket"],
            start=start,
            end=end,
            fill=options["fill"],
            compare=options["compare"],
            across_parties=across,
        )
        columns = COLUMNS + (COMPARE_COLUMNS if options["compare"] else ())
        if across:
            columns += ("parties",)
        rows = [
            [text(item["metric_uid"] if name == "metric_uid" else point[name]) for name in columns]
            for item in data["series"]
            for point in item["points"]
        ]
        if options["format"] == "csv":
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
            return
        widths = [
            max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(columns)
        ]
        self.stdout.write(
            "  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True))
        )
        for row in rows:
            self.stdout.write(
                "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
            )
