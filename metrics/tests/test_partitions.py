"""The values and history tables partitioned by year on PostgreSQL: the migration's
function on a filled plain table (rows, keys, indexes and triggers kept, live writes
mirrored during the copy) and the command that prepares the coming years."""

import importlib
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection

from exante.db import violated_constraint
from metrics.constants import METRIC_VALUE_UNIQUE_CONSTRAINT
from metrics.models import MetricValue, MetricValueHistory
from metrics.partitioning import FIRST_YEAR, YEARS_AHEAD, is_partitioned, partition_table

pytestmark = pytest.mark.postgres

VALUES = MetricValue._meta.db_table
HISTORY = MetricValueHistory._meta.db_table
THIS_YEAR = date.today().year


def fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def partition_names(table: str) -> set[str]:
    return {
        name
        for (name,) in fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
    }


def shape(table: str) -> dict[str, set]:
    """Constraints, indexes and triggers of ``table``, as definitions."""
    return {
        "constraints": set(
            fetch(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass",
                [table],
            )
        ),
        "indexes": {
            (name, definition.replace(" ON ONLY ", " ON "))
            for name, definition in fetch(
                "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
                [table],
            )
        },
        "triggers": set(
            fetch(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [table],
            )
        ),
    }


def check_constraints_now() -> None:
    """Run the deferred foreign-key checks of the test's writes: a table with pending
    trigger events cannot be dropped, and the code under test drops one (a migration or
    a command runs in a transaction of its own, where nothing is pending)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def rows(table: str, order: str) -> list[tuple]:
    return fetch(f"SELECT * FROM {table} ORDER BY {order}")


def test_the_migrated_tables_are_partitioned_by_year(postgres_only, db):
    years = range(FIRST_YEAR, THIS_YEAR + YEARS_AHEAD + 1)
    for table in (VALUES, HISTORY):
        assert is_partitioned(connection.cursor(), table)
        assert partition_names(table) == {
            f"{table}_past",
            f"{table}_future",
            *(f"{table}_y{year}" for year in years),
        }
    assert fetch(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
        [f"{VALUES}_pkey"],
    ) == [("PRIMARY KEY (uid, metric_date)",)]
    assert fetch(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
        [METRIC_VALUE_UNIQUE_CONSTRAINT],
    ) == [("UNIQUE (entity_uid, metric_id, time_unit, metric_date) INCLUDE (value)",)]


@pytest.fixture
def plain_tables(postgres_only, db):
    """The values and history tables as they were before partitioning, made by the same
    migrations' code in a schema of their own: the test's statements (and the ORM's)
    reach them first by the search path; the transaction's end drops them."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA plain")
        cursor.execute("SET LOCAL search_path TO plain, public")
    with connection.schema_editor() as editor:
        editor.create_model(MetricValue)
        editor.create_model(MetricValueHistory)
    with connection.schema_editor() as editor:
        triggers = importlib.import_module("metrics.migrations.0004_value_history_triggers")
        triggers.create_triggers(None, editor)
        covering = importlib.import_module(
            "metrics.migrations.0006_metricvalue_unique_index_covers_value"
        )
        covering._replace(" INCLUDE (value)")(None, editor)
    assert fetch("SELECT to_regclass(%s)::text", [VALUES]) == [(VALUES,)]
    assert not is_partitioned(connection.cursor(), VALUES)


def add(definition, entity, metric_date: date, value: int) -> MetricValue:
    return MetricValue.objects.create(
        metric=definition,
        context_type="ORGANIZATION",
        entity_uid=entity.uid,
        metric_date=metric_date,
        value=Decimal(value),
    )


def test_a_filled_plain_table_is_partitioned_with_its_rows_keys_indexes_and_triggers(
    plain_tables, organization, total_ar
):
    dates = [date(1999, 5, 1), date(2024, 1, 1), date(2025, 6, 1), date(2026, 3, 1)]
    dates += [date(2031, 1, 1), date(2024, 2, 1), date(2025, 7, 1)]
    made = [add(total_ar, organization, day, n) for n, day in enumerate(dates)]
    # Updates and deletes made by hand: the history triggers record them as ``system``.
    MetricValue.objects.filter(uid=made[1].uid).update(value=Decimal(100))
    MetricValue.objects.filter(uid=made[2].uid).delete()
    before = {table: shape(table) for table in (VALUES, HISTORY)}
    values_before = rows(VALUES, "uid")
    history_before = rows(HISTORY, "value_uid, version")
    assert len(history_before) == 9

    check_constraints_now()
    assert partition_table(connection, HISTORY, first_year=2024, last_year=2026, batch_size=2)
    assert rows(HISTORY, "value_uid, version") == history_before

    live = []

    def write_meanwhile(copied: int):
        """Writes between two batches of the values' copy, as the app would make them."""
        if live:
            return
        live.append(add(total_ar, organization, date(2025, 8, 1), 7))
        # Rows already copied (the oldest uids) and one not yet copied (the newest).
        MetricValue.objects.filter(uid=made[0].uid).update(value=Decimal(200))
        MetricValue.objects.filter(uid=made[1].uid).delete()
        MetricValue.objects.filter(uid=made[-1].uid).update(value=Decimal(300))

    assert partition_table(
        connection, VALUES, first_year=2024, last_year=2026, batch_size=2, report=write_meanwhile
    )

    assert is_partitioned(connection.cursor(), VALUES)
    assert is_partitioned(connection.cursor(), HISTORY)
    assert partition_names(VALUES) == {
        f"{VALUES}_{suffix}" for suffix in ("past", "y2024", "y2025", "y2026", "future")
    }
    # Every row, every column, as it was, and the writes made during the copy.
    now = {row[0]: row for row in rows(VALUES, "uid")}
    was = {row[0]: row for row in values_before}
    assert set(now) == set(was) - {made[1].uid} | {live[0].uid}
    changed = {made[0].uid, made[-1].uid}
    assert [now[uid] for uid in sorted(set(now) - changed - {live[0].uid})] == [
        was[uid] for uid in sorted(set(now) - changed - {live[0].uid})
    ]
    assert fetch(
        f"SELECT uid, value, version FROM {VALUES} WHERE uid IN (%s, %s) ORDER BY uid",
        [made[0].uid, made[-1].uid],
    ) == [(made[0].uid, Decimal(200), 2), (made[-1].uid, Decimal(300), 2)]
    assert len(rows(HISTORY, "value_uid, version")) == len(history_before) + 4
    assert fetch(f"SELECT count(*) FROM {VALUES}_past") == [(1,)]
    assert fetch(f"SELECT count(*) FROM {VALUES}_future") == [(1,)]
    # Same constraints, indexes and triggers, under the same names; the keys gain the date.
    after = {table: shape(table) for table in (VALUES, HISTORY)}
    for table, key in ((VALUES, "uid"), (HISTORY, "value_uid, version")):
        old_key = f"PRIMARY KEY ({key})"
        new_key = f"PRIMARY KEY ({key}, metric_date)"
        assert after[table]["constraints"] == {
            (name, new_key if definition == old_key else definition)
            for name, definition in before[table]["constraints"]
        }
        assert after[table]["indexes"] == {
            (name, definition.replace(f"({key})", f"({key}, metric_date)"))
            for name, definition in before[table]["indexes"]
        }
        assert after[table]["triggers"] == before[table]["triggers"]
    assert len(after[VALUES]["triggers"]) == 3
    assert fetch("SELECT count(*) FROM pg_proc WHERE proname LIKE '%%mirror%%'") == [(0,)]

    # The history triggers record what happens to the partitioned table.
    history_count = len(rows(HISTORY, "value_uid, version"))
    MetricValue.objects.filter(uid=made[4].uid).update(value=Decimal(400))
    MetricValue.objects.filter(uid=made[5].uid).delete()
    versions = fetch(
        f"SELECT value_uid, version, operation FROM {HISTORY} "
        "WHERE value_uid IN (%s, %s) AND superseded_at IS NULL ORDER BY metric_date",
        [made[4].uid, made[5].uid],
    )
    assert versions == [(made[5].uid, 2, "delete"), (made[4].uid, 2, "update")]
    assert len(rows(HISTORY, "value_uid, version")) == history_count + 2
    # A duplicate is reported by the partition's index, named after the constraint.
    with pytest.raises(IntegrityError) as duplicate:
        add(total_ar, organization, date(2025, 8, 1), 8)
    assert violated_constraint(duplicate.value, MetricValue) == METRIC_VALUE_UNIQUE_CONSTRAINT


def test_partitioning_a_partitioned_table_is_a_no_op(postgres_only, db):
    assert not partition_table(connection, VALUES, first_year=2000, last_year=2030)
    assert not partition_table(connection, HISTORY, first_year=2000, last_year=2030)


def test_the_command_prepares_the_coming_years_and_moves_their_rows(
    postgres_only, organization, total_ar, capsys
):
    soon, later = THIS_YEAR + YEARS_AHEAD + 1, THIS_YEAR + 10
    early = add(total_ar, organization, date(soon, 4, 1), 1)
    late = add(total_ar, organization, date(later, 4, 1), 2)
    history = rows(HISTORY, "value_uid, version")
    check_constraints_now()

    call_command("ensure_value_partitions", "--years-ahead", str(YEARS_AHEAD + 2))

    made = [f"y{soon}", f"y{soon + 1}"]
    assert capsys.readouterr().out == (
        f"{VALUES}: created {', '.join(f'{VALUES}_{name}' for name in made)}\n"
        f"{HISTORY}: created {', '.join(f'{HISTORY}_{name}' for name in made)}\n"
    )
    for table in (VALUES, HISTORY):
        assert {f"{table}_{name}" for name in made} <= partition_names(table)
        assert fetch(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s",
            [f"{table}_future"],
        ) == [(f"FOR VALUES FROM ('{soon + 2}-01-01') TO (MAXVALUE)",)]
    assert fetch(f"SELECT uid FROM {VALUES}_y{soon}") == [(early.uid,)]
    assert fetch(f"SELECT uid FROM {VALUES}_future") == [(late.uid,)]
    assert fetch(f"SELECT value_uid FROM {HISTORY}_y{soon}") == [(early.uid,)]
    # Moving rows between partitions is not a change of the values: no history.
    assert rows(HISTORY, "value_uid, version") == history
    # The new partitions' unique index leads back to the constraint.
    with pytest.raises(IntegrityError) as duplicate:
        add(total_ar, organization, date(soon, 4, 1), 3)
    assert violated_constraint(duplicate.value, MetricValue) == METRIC_VALUE_UNIQUE_CONSTRAINT


def test_the_command_run_again_changes_nothing(postgres_only, db, capsys):
    call_command("ensure_value_partitions")
    last = THIS_YEAR + YEARS_AHEAD
    assert capsys.readouterr().out == (
        f"{VALUES}: every year up to {last} has its partition ({VALUES}_future holds the "
        "later dates)\n"
        f"{HISTORY}: every year up to {last} has its partition ({HISTORY}_future holds the "
        "later dates)\n"
    )


def test_a_copy_that_lost_a_row_is_not_swapped(plain_tables, organization, total_ar):
    made = [add(total_ar, organization, date(2025, month, 1), month) for month in (1, 2, 3)]
    check_constraints_now()

    def lose_a_row(copied: int):
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {VALUES}_partitioned WHERE uid = %s", [made[0].uid])

    with pytest.raises(RuntimeError, match=f"{VALUES}: 3 rows, 2 copied; nothing was swapped"):
        partition_table(
            connection, VALUES, first_year=2024, last_year=2026, batch_size=3, report=lose_a_row
        )
    assert not is_partitioned(connection.cursor(), VALUES)
    assert [row[0] for row in rows(VALUES, "uid")] == [value.uid for value in made]
