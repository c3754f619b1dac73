"""``manage.py report_gaps``: missing periods of an organization's series, for cron and
alerting."""

import csv
import io
import os
import tempfile
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from entities.models import Organization
from exante.json import dumps
from metrics.constants import TimeUnit
from metrics.coverage import GAP_KEYS, organization_gaps
from metrics.periods import entity_today

from ._shared import OperatorCommand, definitions_for, parse_date

HELP = """Report the missing periods of every series an organization should have: the
organization itself for ORGANIZATION metrics, each active party for PARTY metrics, each
active member for USER metrics (the rows of the freshness endpoint).

    manage.py report_gaps --organization UID --metric total_ar,dso [--time-unit day]
        [--start DATE] [--end DATE] [--format table|csv|json|prometheus] [--output FILE]

Dates default to the 90 days up to today in the organization's timezone. Exit status:
0 when no series has a gap, 1 when one has, 2 on bad arguments (an unknown organization
or metric included). With --format json standard output is one JSON document and nothing
else. --format prometheus writes the node_exporter textfile-collector format

    exante_series_with_gaps{organization="<uid>"} N
    exante_stale_series{organization="<uid>"} N

where a stale series has no value within --stale-after periods (default 1) of today;
with --output the file is replaced atomically, as the collector requires.
"""

#: Without --start, the report covers this many days before the end date.
DEFAULT_DAYS = 90
COLUMNS = (*GAP_KEYS, "start", "end", "periods")
BAD_ARGUMENTS = 2


def bad(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_ARGUMENTS)


class Command(OperatorCommand):
    help = HELP

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="uid of the organization.")
        parser.add_argument("--metric", required=True, help="Comma-separated metric uids.")
        parser.add_argument("--time-unit", choices=TimeUnit.values, default=TimeUnit.DAY)
        parser.add_argument("--start", type=parse_date, help="YYYY-MM-DD, inclusive.")
        parser.add_argument("--end", type=parse_date, help="YYYY-MM-DD, inclusive.")
        parser.add_argument(
            "--format", choices=["table", "csv", "json", "prometheus"], default="table"
        )
        parser.add_argument(
            "--stale-after", type=int, default=1, help="Periods before a series is stale."
        )
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args, **options):
        try:
            organization = Organization.objects.get(uid=options["organization"])
        except (Organization.DoesNotExist, ValidationError, ValueError):
            raise bad(f"No organization with uid {options['organization']}.") from None
        definitions = definitions_for(options["metric"], returncode=BAD_ARGUMENTS)
        if options["stale_after"] < 0:
            raise bad("--stale-after must be 0 or more.")
        end = options["end"] or entity_today(organization)
        start = options["start"] or end - timedelta(days=DEFAULT_DAYS)
        if start > end:
            raise bad(f"--start ({start}) is after --end ({end}).")

        report = organization_gaps(
            organization=organization,
            definitions=definitions,
            time_unit=options["time_unit"],
            start=start,
            end=end,
            stale_after=options["stale_after"],
        )
        self._write(report, options)
        if report["gaps"]:
            raise _Gaps()

    def _write(self, report: dict, options) -> None:
        text = {
            "json": _json,
            "csv": _csv,
            "table": _table,
            "prometheus": _prometheus,
        }[options["format"]](report)
        if options["output"]:
            _replace(Path(options["output"]), text)
        else:
            self.stdout.write(text, ending="")


class _Gaps(CommandError):
    """Some series has a gap: exit status 1, with nothing written to standard error
    but this one line."""

    def __init__(self):
        super().__init__("Some series have missing periods.", returncode=1)


def _rows(report: dict) -> list[list[str]]:
    return [
        [str(gap[name]) for name in GAP_KEYS]
        + [str(run["start"]), str(run["end"]), str(run["periods"])]
        for gap in report["gaps"]
        for run in gap["missing"]
    ]


def _json(report: dict) -> str:
    return dumps(report).decode() + "\n"


def _csv(report: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(_rows(report))
    return buffer.getvalue()


def _table(report: dict) -> str:
    rows = _rows(report)
    summary = (
        f"{report['series_with_gaps']} of {report['series']} series have missing "
        f"{report['time_unit']}s from {report['start_date']} to {report['end_date']}."
    )
    if not rows:
        return summary + "\n"
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(COLUMNS)]
    lines = ["  ".join(name.ljust(w) for name, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([*lines, summary]) + "\n"


def _prometheus(report: dict) -> str:
    label = f'organization="{report["organization_uid"]}"'
    return (
        "# HELP exante_series_with_gaps Series of the organization with missing periods.\n"
        "# TYPE exante_series_with_gaps gauge\n"
        f"exante_series_with_gaps{{{label}}} {report['series_with_gaps']}\n"
        "# HELP exante_stale_series Series of the organization with no recent value.\n"
        "# TYPE exante_stale_series gauge\n"
        f"exante_stale_series{{{label}}} {report['stale_series']}\n"
    )


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a collector never reads half a file)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
