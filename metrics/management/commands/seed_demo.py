"""``manage.py seed_demo``: idempotent demo data, and bigger tables for benchmarks."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from metrics.demo import DEMO_USERS, seed_demo


class Command(BaseCommand):
    help = "Load demo organizations, parties, users, metrics and value histories (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--organizations", type=int, default=1)
        parser.add_argument("--parties", type=int, default=5, help="Parties per organization.")
        parser.add_argument("--days", type=int, default=365, help="Days of daily history.")
        parser.add_argument("--quiet", action="store_true", help="Do not print credentials.")

    def handle(self, *args, **options):
        summary = seed_demo(
            organizations=options["organizations"],
            parties=options["parties"],
            days=options["days"],
            today=timezone.localdate(),
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {summary['organizations']} organization(s), "
                f"{summary['entities']} entities, {summary['values_total']} values in total."
            )
        )
        if not options["quiet"]:
            self.stdout.write("Demo accounts (email / password):")
            for email, password, role, is_staff, is_superuser, _group in DEMO_USERS:
                kind = "superuser" if is_superuser else "staff analyst" if is_staff else role
                self.stdout.write(f"  {email:32} {password:20} {kind}")
