"""What the operators' commands share (the leading underscore keeps Django from taking
this module for a command)."""

from argparse import ArgumentTypeError
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from metrics.models import MetricDefinition


def parse_date(text: str) -> date:
    """An argparse ``type``: ``YYYY-MM-DD``, else a usage error naming the option (exit
    status 2 on the command line, like any other bad argument)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD.") from None


class OperatorCommand(BaseCommand):
    """A command whose help text keeps its own line breaks (examples, lists)."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        kwargs["formatter_class"] = RawDescriptionHelpFormatter
        return super().create_parser(prog_name, subcommand, **kwargs)


def definitions_for(option: str, *, returncode: int = 1) -> list[MetricDefinition]:
    """``--metric a,b`` → definitions in that order; unknown uids are a command error
    exiting with ``returncode``."""
    uids = list(dict.fromkeys(part.strip() for part in option.split(",") if part.strip()))
    found = MetricDefinition.objects.in_bulk(uids, field_name="uid")
    if unknown := [uid for uid in uids if uid not in found] or ([] if uids else ["(none)"]):
        raise CommandError(f"Unknown metric uid(s): {', '.join(unknown)}.", returncode=returncode)
    return [found[uid] for uid in uids]
