"""On PostgreSQL the unique index of values also carries ``value`` (``INCLUDE``), so the
reads that aggregate an entity's range (series, coverage, the roll-up across parties)
are index-only scans instead of one heap page per value: summing one metric of 1,000
parties over a year measured 210 ms through the heap and 45 ms index-only.

The constraint keeps its name and key columns (duplicates and ``ON CONFLICT`` are decided
as before); Django's model state is unchanged, because a ``UniqueConstraint`` with
``include`` is not created at all on SQLite, which needs no covering index.
"""

from django.db import migrations

TABLE = "metrics_metricvalue"
NAME = "metricvalue_entity_metric_unit_date_uniq"
KEY = "entity_uid, metric_id, time_unit, metric_date"


def _replace(include: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(
            f"ALTER TABLE {TABLE} DROP CONSTRAINT {NAME}, "
            f"ADD CONSTRAINT {NAME} UNIQUE ({KEY}){include}"
        )

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0005_metricdefinition_aggregation"),
    ]

    operations = [
        migrations.RunPython(_replace(" INCLUDE (value)"), _replace("")),
    ]
