"""``manage.py ensure_value_partitions``: the coming years' partitions of the values and
history tables, for cron."""

from django.core.management.base import CommandError
from django.db import connection

from metrics.models import MetricValue, MetricValueHistory
from metrics.partitioning import (
    YEARS_AHEAD,
    ensure_year_partitions,
    future_partition,
    last_prepared_year,
)

from ._shared import OperatorCommand

HELP = f"""Create the partitions of the coming years of the values and history tables
(PostgreSQL; on SQLite the tables are not partitioned and there is nothing to do).

    manage.py ensure_value_partitions [--years-ahead N]

Every year up to the current one plus N (default {YEARS_AHEAD}) gets a partition of its
own. Dates after the prepared years are kept in the open-ended partition <table>_future;
its rows of the new years move into their partitions, in one transaction per table that
waits at most 10 seconds for the table's lock (a table whose transaction fails is left as
it was: run the command again).
A re-run is a no-op. Run it from cron, monthly or at least once a year before January.
"""

TABLES = (MetricValue._meta.db_table, MetricValueHistory._meta.db_table)


class Command(OperatorCommand):
    help = HELP

    def add_arguments(self, parser):
        parser.add_argument(
            "--years-ahead",
            type=int,
            default=YEARS_AHEAD,
            help=f"Years after the current one to prepare (default {YEARS_AHEAD}).",
        )

    def handle(self, *args, **options):
        years_ahead = options["years_ahead"]
        if years_ahead < 0:
            raise CommandError("--years-ahead must be 0 or more.")
        if connection.vendor != "postgresql":
            self.stdout.write("The tables are partitioned on PostgreSQL only: nothing to do.")
            return
        last_year = last_prepared_year(years_ahead)
        for table in TABLES:
            try:
                made = ensure_year_partitions(connection, table, last_year=last_year)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            if made:
                self.stdout.write(f"{table}: created {', '.join(made)}")
            else:
                self.stdout.write(
                    f"{table}: every year up to {last_year} has its partition "
                    f"({future_partition(table)} holds the later dates)"
                )
