from django.core.management.base import BaseCommand, CommandError

from exante.idempotency.store import PURGE_BATCH_SIZE, purge_expired


class Command(BaseCommand):
    help = (
        "Delete expired idempotency keys (older than IDEMPOTENCY_TTL_HOURS), in batches. "
        "Safe to run at any time, from cron too: live keys are never touched."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=PURGE_BATCH_SIZE,
            help=f"rows deleted per statement (default {PURGE_BATCH_SIZE})",
        )

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        total = sum(purge_expired(batch_size=batch_size))
        self.stdout.write(f"Deleted {total} expired idempotency key(s).")
