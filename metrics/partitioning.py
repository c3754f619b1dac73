"""Yearly range partitions of the values and history tables by ``metric_date``
(PostgreSQL only; SQLite keeps plain tables).

A partitioned table ``T`` holds ``T_y<year>`` for each prepared year, between two
open-ended partitions: ``T_past`` (every date before the first year) and ``T_future``
(every date after the last). Open-ended range partitions rather than a ``DEFAULT`` one:
with range partitions only, PostgreSQL knows their order and reads them newest first, so
the latest read (``ORDER BY metric_date DESC LIMIT 1``) stops in the newest partition
that has a row; a ``DEFAULT`` partition may hold any date, and the same read then merges
every partition's index.

``partition_table`` turns a plain table into a partitioned one (the migration, on an empty
or a filled table); ``ensure_year_partitions`` prepares the coming years (the
``ensure_value_partitions`` command). Both read the table's shape from the catalogue, so
they keep whatever columns, constraints, indexes and triggers the table has.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.db import transaction

PARTITION_KEY = "metric_date"
#: The first year with a partition of its own when a table is partitioned.
FIRST_YEAR = 2000
#: Years prepared beyond the current one (next year and the one after).
YEARS_AHEAD = 2
#: Rows copied per transaction when a filled table is partitioned.
COPY_BATCH = 10_000


def last_prepared_year(years_ahead: int = YEARS_AHEAD) -> int:
    """The last year with a partition of its own: the current one plus ``years_ahead``."""
    return date.today().year + years_ahead  # noqa: DTZ011 - a year, not an instant


_TAIL_BOUND = re.compile(r"FROM \('(\d{4})-01-01'\) TO \(MAXVALUE\)")


def year_partition(table: str, year: int) -> str:
    return f"{table}_y{year}"


def past_partition(table: str) -> str:
    return f"{table}_past"


def future_partition(table: str) -> str:
    return f"{table}_future"


def _year_bounds(year: int) -> str:
    return f"FROM ('{year}-01-01') TO ('{year + 1}-01-01')"


def _future_bounds(first_year: int) -> str:
    """The open-ended tail's bounds; ``_TAIL_BOUND`` reads its first year back."""
    return f"FROM ('{first_year}-01-01') TO (MAXVALUE)"


def is_partitioned(cursor, table: str) -> bool:
    cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [table])
    row = cursor.fetchone()
    return bool(row and row[0])


def _columns(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [table],
    )
    return [name for (name,) in cursor.fetchall()]


def _primary_key(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT quote_ident(a.attname) FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.n",
        [table],
    )
    return [name for (name,) in cursor.fetchall()]


@dataclass(frozen=True)
class _Shape:
    """What a plain table carries that ``CREATE TABLE … (LIKE …)`` does not copy: its
    key, unique and foreign-key constraints, its other indexes and its triggers, each as
    the statement that makes it again."""

    constraints: list[tuple[str, str]]  # (name, definition)
    indexes: list[tuple[str, str]]  # (name, CREATE INDEX statement)
    triggers: list[str]  # CREATE TRIGGER statements


def _shape(cursor, table: str) -> _Shape:
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') ORDER BY conname",
        [table],
    )
    constraints = []
    for name, kind, definition in cursor.fetchall():
        if kind == "p" and PARTITION_KEY not in definition:
            # A partitioned table's keys must contain the partition key.
            definition = re.sub(r"\)$", f", {PARTITION_KEY})", definition)
        elif kind == "u" and PARTITION_KEY not in definition.split(" INCLUDE ")[0]:
            raise ValueError(f"{table}: unique constraint {name} lacks {PARTITION_KEY}")
        constraints.append((name, definition))
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
        "AND k.conrelid = i.indrelid) ORDER BY c.relname",
        [table],
    )
    indexes = list(cursor.fetchall())
    cursor.execute(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = %s::regclass "
        "AND NOT tgisinternal AND tgname <> %s ORDER BY tgname",
        [table, _mirror(table)],
    )
    triggers = [definition for (definition,) in cursor.fetchall()]
    return _Shape(constraints, indexes, triggers)


def _building(table: str) -> str:
    return f"{table}_partitioned"


def _mirror(table: str) -> str:
    return f"{table}_mirror"


def _temporary(name: str) -> str:
    """The name a constraint or index of the table being built has until the swap (the
    plain table still holds the real one)."""
    return f"p_{name}"[:63]


def _create_partitions(table: str, parent: str, first_year: int, last_year: int) -> list[str]:
    statements = [
        f"CREATE TABLE {past_partition(table)} PARTITION OF {parent} "
        f"FOR VALUES FROM (MINVALUE) TO ('{first_year}-01-01')"
    ]
    statements += [
        f"CREATE TABLE {year_partition(table, year)} PARTITION OF {parent} "
        f"FOR VALUES {_year_bounds(year)}"
        for year in range(first_year, last_year + 1)
    ]
    statements.append(
        f"CREATE TABLE {future_partition(table)} PARTITION OF {parent} "
        f"FOR VALUES {_future_bounds(last_year + 1)}"
    )
    return statements


def _key_after(key: list[str], last: tuple | None) -> tuple[str, list]:
    """``WHERE`` condition (and parameters) of the rows whose key sorts after ``last``."""
    if last is None:
        return "true", []
    placeholders = ", ".join(["%s"] * len(key))
    return f"({', '.join(key)}) > ({placeholders})", list(last)


def partition_table(
    connection,
    table: str,
    *,
    first_year: int,
    last_year: int,
    batch_size: int = COPY_BATCH,
    report: Callable[[int], None] | None = None,
) -> bool:
    """Turn the plain ``table`` into one partitioned by year of ``metric_date``, with the
    same columns, defaults, checks, constraints (the primary key gains ``metric_date``),
    indexes and triggers, and the same rows. False when it is partitioned already.

    Run outside a transaction; each step commits its own, so writers are held up only by
    the last one:

    1. the partitioned table is built beside the plain one, and a row trigger on the plain
       one mirrors every insert, update and delete into it from then on;
    2. the rows are copied in batches in key order, one transaction each; a batch first
       locks its rows (``FOR SHARE``), so a concurrent change of one of them waits for the
       copy and its mirror then finds the copied row;
    3. both tables are counted in one statement (one snapshot): they must hold as many rows;
    4. one short transaction blocks writes, copies what the last batch missed, drops the
       plain table and gives the partitioned one its name, constraint and index names and
       triggers.

    A run that stopped half way leaves the table being built (``<table>_partitioned``) and
    the mirror trigger; the next run drops both and starts again.
    """
    building = _building(table)
    mirror = _mirror(table)
    with connection.cursor() as cursor:
        if is_partitioned(cursor, table):
            return False
        key = _primary_key(cursor, table)
        with transaction.atomic(using=connection.alias):
            cursor.execute(f"DROP TRIGGER IF EXISTS {mirror} ON {table}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {mirror}()")
            cursor.execute(f"DROP TABLE IF EXISTS {building}")
            shape = _shape(cursor, table)
            columns = _columns(cursor, table)
            cursor.execute(
                f"CREATE TABLE {building} (LIKE {table} INCLUDING DEFAULTS "
                f"INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY RANGE ({PARTITION_KEY})"
            )
            for statement in _create_partitions(table, building, first_year, last_year):
                cursor.execute(statement)
            for name, definition in shape.constraints:
                cursor.execute(
                    f"ALTER TABLE {building} ADD CONSTRAINT {_temporary(name)} {definition}"
                )
            for name, definition in shape.indexes:
                cursor.execute(_rewrite_index(definition, name, table, building))
            _create_mirror(cursor, table, building, columns, [*key, PARTITION_KEY])

        column_list = ", ".join(columns)
        copy = (
            f"INSERT INTO {building} ({column_list}) SELECT {column_list} FROM {table} "
            "WHERE {after} AND ({key}) <= ({upper}) ON CONFLICT DO NOTHING"
        )
        last = None
        copied = 0
        while True:
            with transaction.atomic(using=connection.alias):
                after, params = _key_after(key, last)
                cursor.execute(
                    f"SELECT {', '.join(key)} FROM {table} WHERE {after} "
                    f"ORDER BY {', '.join(key)} LIMIT %s FOR SHARE",
                    [*params, batch_size],
                )
                rows = cursor.fetchall()
                if not rows:
                    break
                upper = rows[-1]
                cursor.execute(
                    copy.format(
                        after=after,
                        key=", ".join(key),
                        upper=", ".join(["%s"] * len(key)),
                    ),
                    [*params, *upper],
                )
            last = upper
            copied += len(rows)
            if report is not None:
                report(copied)

        # One statement sees both tables in one snapshot, and the mirror writes both in
        # the writer's transaction: the counts agree without blocking anyone.
        cursor.execute(f"SELECT (SELECT count(*) FROM {table}), (SELECT count(*) FROM {building})")
        plain, partitioned = cursor.fetchone()
        if plain != partitioned:
            raise RuntimeError(f"{table}: {plain} rows, {partitioned} copied; nothing was swapped")

        with transaction.atomic(using=connection.alias):
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            after, params = _key_after(key, last)
            cursor.execute(
                f"INSERT INTO {building} ({column_list}) SELECT {column_list} FROM {table} "
                f"WHERE {after} ON CONFLICT DO NOTHING",
                params,
            )
            # The triggers again, without the mirror (it goes with the plain table).
            shape = _shape(cursor, table)
            cursor.execute(f"DROP TABLE {table}")
            cursor.execute(f"DROP FUNCTION {mirror}()")
            cursor.execute(f"ALTER TABLE {building} RENAME TO {table}")
            for name, _ in shape.constraints:
                cursor.execute(
                    f"ALTER TABLE {table} RENAME CONSTRAINT {_temporary(name)} TO {name}"
                )
            for name, _ in shape.indexes:
                cursor.execute(f"ALTER INDEX {_temporary(name)} RENAME TO {name}")
            for definition in shape.triggers:
                cursor.execute(definition)
        # Autovacuum analyses partitions, never the partitioned table itself.
        cursor.execute(f"ANALYZE {table}")
    return True


def _rewrite_index(definition: str, name: str, table: str, building: str) -> str:
    """``pg_get_indexdef``'s statement for the table being built, under a temporary name."""
    match = re.match(r"CREATE (UNIQUE )?INDEX (\S+) ON (?:ONLY )?(\S+) (USING .*)$", definition)
    if match is None or match.group(2) != name:
        raise ValueError(f"{table}: cannot rebuild index {definition!r}")
    unique, _, _, rest = match.groups()
    if unique and PARTITION_KEY not in rest.split(" INCLUDE ")[0]:
        raise ValueError(f"{table}: unique index {name} lacks {PARTITION_KEY}")
    return f"CREATE {unique or ''}INDEX {_temporary(name)} ON {building} {rest}"


def _create_mirror(cursor, table: str, building: str, columns: list[str], key: list[str]):
    """A row trigger on ``table`` that repeats each insert, update and delete on
    ``building``: an update as a delete and an insert of the whole row."""
    mirror = _mirror(table)
    match_old = " AND ".join(f"{column} = OLD.{column}" for column in key)
    new_values = ", ".join(f"NEW.{column}" for column in columns)
    cursor.execute(
        f"""
CREATE FUNCTION {mirror}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM {building} WHERE {match_old};
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO {building} ({", ".join(columns)}) VALUES ({new_values})
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER {mirror} AFTER INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {mirror}();
"""
    )


def partitions(cursor, table: str) -> dict[str, str]:
    """The partitions of ``table``: name → bound (``FOR VALUES FROM … TO …``)."""
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass "
        "ORDER BY c.relname",
        [table],
    )
    return dict(cursor.fetchall())


def ensure_year_partitions(connection, table: str, *, last_year: int) -> list[str]:
    """Partitions of their own for every year up to ``last_year``; the names made (none
    when they exist: a re-run is a no-op).

    The open-ended ``T_future`` partition is split in one transaction: detached, the new
    years and a new ``T_future`` created, its rows (normally none) moved into them by
    inserts into the partitions themselves (so the history triggers, which belong to the
    partitioned table, record nothing), and the old one dropped.
    """
    tail = future_partition(table)
    with connection.cursor() as cursor:
        bounds = partitions(cursor, table)
        match = _TAIL_BOUND.search(bounds.get(tail, ""))
        if match is None:
            raise ValueError(f"{table} has no partition {tail} from a year to MAXVALUE")
        start = int(match.group(1))
        if start > last_year:
            return []
        columns = ", ".join(_columns(cursor, table))
        split = f"{tail}_split"
        made = []
        with transaction.atomic(using=connection.alias):
            # Waits at most this long behind long queries for the partitioned table's lock,
            # rather than queueing every reader behind it; a re-run picks up.
            cursor.execute("SELECT set_config('lock_timeout', '10s', true)")
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {tail}")
            cursor.execute(f"ALTER TABLE {tail} RENAME TO {split}")
            for year in range(start, last_year + 1):
                name = year_partition(table, year)
                cursor.execute(
                    f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {_year_bounds(year)}"
                )
                made.append(name)
            cursor.execute(
                f"CREATE TABLE {tail} PARTITION OF {table} "
                f"FOR VALUES {_future_bounds(last_year + 1)}"
            )
            for year in range(start, last_year + 1):
                cursor.execute(
                    f"INSERT INTO {year_partition(table, year)} ({columns}) "
                    f"SELECT {columns} FROM {split} "
                    f"WHERE {PARTITION_KEY} >= %s AND {PARTITION_KEY} < %s",
                    [f"{year}-01-01", f"{year + 1}-01-01"],
                )
            cursor.execute(
                f"INSERT INTO {tail} ({columns}) SELECT {columns} FROM {split} "
                f"WHERE {PARTITION_KEY} >= %s",
                [f"{last_year + 1}-01-01"],
            )
            cursor.execute(f"DROP TABLE {split}")
    return made
