"""Reading PostgreSQL plans of the partitioned values and history tables in tests."""

import re

from django.db import connection


def plan_of(sql: str, *, analyze: bool = False, index_reads_only: bool = True) -> str:
    """The plan of ``sql``. A partition of a few hundred rows fits in a few pages, where a
    sequential or bitmap scan may cost the planner less than walking an index; with them
    off (``index_reads_only``) the plan shows the index the planner picks for these
    conditions, as it does on a big table."""
    options = "ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF" if analyze else "COSTS OFF"
    with connection.cursor() as cursor:
        if index_reads_only:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN ({options}) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def scanned(plan: str, table: str) -> set[str]:
    """The partitions of ``table`` the plan reads, by suffix (``y2025``, ``past``)."""
    return set(re.findall(rf"\bon {table}_(y\d{{4}}|past|future)\b", plan))


def index_copies(index: str) -> dict[str, str]:
    """Each partition's copy of the partitioned ``index`` (PostgreSQL names them after
    their columns) → the partition's suffix."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_index x ON x.indexrelid = c.oid JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE i.inhparent = %s::regclass",
            [index],
        )
        return {name: table.rsplit("_", 1)[1] for name, table in cursor.fetchall()}


def index_scans(plan: str, index: str, *, backward_only: bool = False) -> list[tuple[str, str]]:
    """(partition suffix, what follows the node: its run or cost) of each index scan of a
    copy of ``index`` in the plan, in plan order."""
    how = " Backward" if backward_only else "(?: Backward)?"
    copies = index_copies(index)
    nodes = re.findall(rf"Index (?:Only )?Scan{how} using (\S+) on \S+ \S+ ?(.*)", plan)
    return [(copies[name], rest) for name, rest in nodes if name in copies]
