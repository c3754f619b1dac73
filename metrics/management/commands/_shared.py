"""What the operators' commands share (the leading underscore keeps Django from taking
this module for a command)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError


def parse_date(text: str) -> date:
    """An argparse ``type``: ``YYYY-MM-DD`` or a command error saying so."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date in the form YYYY-MM-DD.") from None


class OperatorCommand(BaseCommand):
    """A command whose help text keeps its own line breaks (examples, lists)."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        kwargs["formatter_class"] = RawDescriptionHelpFormatter
        return super().create_parser(prog_name, subcommand, **kwargs)
