"""``manage.py revert_batch BATCH_ID``: delete what one bulk call or import run created."""

from uuid import UUID

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count, F

from metrics.changes import change_context
from metrics.constants import CHANGE_REASON_MAX_LENGTH, ChangeSource
from metrics.models import MetricValue
from metrics.services import metric_values_delete

HELP = """Delete the metric values one bulk call or one import run created.

Every row a bulk call or an import run creates records that call's batch_id (returned by
the endpoint, printed by the importer). Rows the batch UPDATED are not touched: they keep
the batch_id of the write that created them (their earlier versions are in the value
history) -- revert deletes only what the batch created, never a row that existed before
it. A row the batch created and a later write changed is deleted too (the
dry run counts them). All in one transaction. The value history records each deletion
with source "revert" and the --reason given.
"""


class Command(BaseCommand):
    help = HELP
    stealth_options = ("stdin",)

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        kwargs["formatter_class"] = RawDescriptionHelpFormatter
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("batch_id", type=UUID, help="The batch id to revert.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be deleted; delete nothing."
        )
        parser.add_argument(
            "--no-input", "--noinput", action="store_true", help="Do not ask for confirmation."
        )
        parser.add_argument(
            "--reason",
            help=f"Why, recorded in the value history (at most {CHANGE_REASON_MAX_LENGTH} "
            "characters).",
        )

    def handle(self, *args, **options):
        batch_id = options["batch_id"]
        reason = options["reason"]
        if reason is not None and len(reason) > CHANGE_REASON_MAX_LENGTH:
            raise CommandError(f"--reason is at most {CHANGE_REASON_MAX_LENGTH} characters.")
        with transaction.atomic(), change_context(source=ChangeSource.REVERT, reason=reason):
            rows = MetricValue.objects.filter(batch_id=batch_id)
            summary = list(
                rows.values("metric__uid").annotate(n=Count("uid")).order_by("metric__uid")
            )
            total = sum(line["n"] for line in summary)
            if not total:
                raise CommandError(f"No value carries batch_id {batch_id}.")
            changed = rows.filter(updated_at__gt=F("created_at")).count()
            self.stdout.write(f"Batch {batch_id} created {total} value(s):")
            for line in summary:
                self.stdout.write(f"  {line['metric__uid']:40} {line['n']}")
            if changed:
                self.stdout.write(f"{changed} of them were changed after the batch wrote them.")
            if options["dry_run"]:
                self.stdout.write("Dry run: nothing deleted.")
                return
            if not options["no_input"]:
                stdin = options.get("stdin")
                prompt = f"Delete these {total} value(s)? Type 'yes' to confirm: "
                self.stdout.write(prompt, ending="")
                self.stdout.flush()
                answer = stdin.readline() if stdin is not None else _input()
                if answer.strip().lower() != "yes":
                    raise CommandError("Cancelled; nothing deleted.")
            deleted = metric_values_delete(rows)
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} value(s) of batch {batch_id}."))


def _input() -> str:
    try:
        return input()
    except EOFError:
        return ""
