"""On PostgreSQL the values table and the history table become partitioned by year of
``metric_date`` (``metrics.partitioning``); SQLite keeps plain tables.

The primary keys gain ``metric_date`` (a partitioned table's keys must contain the
partition key): values ``(uid, metric_date)``, history ``(value_uid, version,
metric_date)``. ``uid`` stays unique in practice (UUIDv7), and Django's model state is
unchanged. A filled table is copied in batches while a trigger mirrors live writes, then
swapped in one short transaction, so the migration runs outside a transaction. The
history table goes first: the values table's triggers then write into the partitioned one.

Nothing is undone on the way back: a partitioned table serves the older migrations, and
running this one again skips a table that is partitioned already.
"""

from django.db import migrations

from metrics.partitioning import FIRST_YEAR, last_prepared_year, partition_table

TABLES = ("metrics_metricvaluehistory", "metrics_metricvalue")


def partition(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    for table in TABLES:
        partition_table(connection, table, first_year=FIRST_YEAR, last_year=last_prepared_year())


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("metrics", "0006_metricvalue_unique_index_covers_value"),
    ]

    operations = [
        migrations.RunPython(partition, migrations.RunPython.noop, elidable=False),
    ]
