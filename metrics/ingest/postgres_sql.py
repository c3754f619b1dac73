"""The SQL of the PostgreSQL import: the stage table, and the statements that check and
write a round of it (see ``metrics.ingest.postgres``)."""

from entities.models import Organization, Party, User

from ..constants import TimeUnit
from ..models import MetricDefinition, MetricValue
from .items import OnConflict
from .statements import (
    CHANGE_COLUMNS,
    CHANGE_SETS,
    VALUE_INSERT_COLUMNS,
    VALUE_KEY_COLUMNS,
    VALUE_UPDATE_COLUMNS,
    value_insert_sql,
)

# A versioned name: a pooled server connection may hold a stage table of another shape,
# made by another version of this code.
STAGE = "metrics_ingest_stage_v2"

STAGE_COLUMNS = ("ln", "valid", "context_type", *VALUE_KEY_COLUMNS, *VALUE_UPDATE_COLUMNS, "uid")
#: The types of ``STAGE_COLUMNS``, for psycopg's binary ``COPY`` (``copy.set_types``).
STAGE_TYPES = (
    "int8",
    "bool",
    "text",
    "uuid",
    "int8",
    "text",
    "date",
    "text",
    "text",
    "text",
    "uuid",
)
# Binary: half the server's work of the text format (no uuid, date or integer text to
# parse), the bottleneck of a re-import.
COPY_STAGE = f"COPY {STAGE} ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

_CREATE_STAGE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} (
    ln bigint NOT NULL,
    valid boolean NOT NULL,
    context_type text NOT NULL,
    entity_uid uuid NOT NULL,
    metric_id bigint,
    time_unit text,
    metric_date date,
    -- Text, made numeric and jsonb by the statement.
    value text,
    timezone text,
    metadata text,
    uid uuid NOT NULL
)
"""

# Created once per connection (temporary tables are per session), emptied per round.
PREPARE_STAGE = f"{_CREATE_STAGE}; TRUNCATE {STAGE}"


def _checked_cte() -> str:
    """The cross-table checks of every staged row, and the default timezone.

    ``problem``: ``entity`` (no such entity in the table its context names), ``metric``
    (the metric is gone, has another context, or is inactive), or NULL.
    """
    org = Organization._meta.db_table
    party = Party._meta.db_table
    user = User._meta.db_table
    definition = MetricDefinition._meta.db_table
    return f"""
checked AS (
    SELECT s.ln, s.valid, s.uid, s.context_type, s.entity_uid, s.metric_id, s.time_unit,
           s.metric_date, s.value::numeric(24, 6) AS value, s.metadata::jsonb AS metadata,
           COALESCE(s.timezone, CASE s.context_type
               WHEN 'PARTY' THEN po.timezone
               WHEN 'ORGANIZATION' THEN COALESCE(NULLIF(o.timezone, ''), 'UTC')
               ELSE COALESCE(NULLIF(u.timezone, ''), 'UTC') END) AS timezone,
           CASE
               WHEN o.id IS NULL AND p.id IS NULL AND u.id IS NULL THEN 'entity'
               WHEN NOT s.valid THEN NULL
               WHEN d.id IS NULL OR d.context_type <> s.context_type
                    OR NOT (d.is_active OR %(allow_inactive)s) THEN 'metric'
           END AS problem
    FROM {STAGE} s
    LEFT JOIN {org} o ON s.context_type = 'ORGANIZATION' AND o.uid = s.entity_uid
    LEFT JOIN {party} p ON s.context_type = 'PARTY' AND p.uid = s.entity_uid
    LEFT JOIN {org} po ON po.id = p.organization_id
    LEFT JOIN {user} u ON s.context_type = 'USER' AND u.uid = s.entity_uid
    LEFT JOIN {definition} d ON d.id = s.metric_id
)"""  # noqa: S608 - identifiers come from model metadata; every value is a parameter


VALUES_TABLE = MetricValue._meta.db_table
_VALUES = VALUES_TABLE
#: A staged row's columns in ``VALUE_INSERT_COLUMNS`` order; the run's batch id and time.
_SELECT_NEW = "SELECT " + ", ".join(
    {
        "batch_id": "%(batch_id)s",
        "created_at": "%(now)s",
        "updated_at": "%(now)s",
        "version": "1",
        **{c: f"%({c})s" for c in CHANGE_COLUMNS},
    }.get(c, c)
    for c in VALUE_INSERT_COLUMNS
)

#: Every statement answers rows of (kind, line, problem, n1, n2, n3, n4): ``problem`` rows
#: (a line that failed a cross-table check), ``conflict`` rows (a line whose key is stored,
#: with ``on_conflict=error``) and one ``counts`` row, whose numbers depend on the statement.
#: Sources of the plain ``INSERT``: every checked row; the rows the lookup found new.
_NEW_CHECKED = f"{_SELECT_NEW} FROM checked WHERE valid AND problem IS NULL"
_NEW_MATCHED = f"{_SELECT_NEW} FROM matched WHERE stored IS NULL"

_PROBLEMS = "SELECT 'problem', ln, problem, 0, 0, 0, 0 FROM checked WHERE problem IS NOT NULL"


def insert_statement() -> str:
    """Plain ``INSERT … SELECT`` of every checked row, without looking for stored keys.

    The cheapest write (no index probe before the insert, no speculative insertion), for
    rounds that are expected to be new: a stored key anywhere in the round makes the unique
    index refuse the whole statement, and the round is redone by ``classify_statement``.
    counts: (created).
    """
    return f"""
WITH {_checked_cte()}, written AS (
    {value_insert_sql(source=_NEW_CHECKED, conflict="error")}
)
{_PROBLEMS}
UNION ALL
SELECT 'counts', 0, NULL, (SELECT count(*) FROM checked WHERE valid AND problem IS NULL), 0, 0, 0
"""  # noqa: S608


#: A run of consecutive dates of one series, read with one range scan of the unique index,
#: spans at most this many steps of its time unit (``_stored_cte``).
_RUN_STEPS = 16
#: Days a step of each time unit spans at most (a month, 31; a year, 366).
_UNIT_DAYS = f"""CASE time_unit WHEN '{TimeUnit.DAY}' THEN 1 WHEN '{TimeUnit.MONTH}' THEN 31
    ELSE 366 END"""
_STORED_COLUMNS = (
    "e.uid, e.entity_uid, e.metric_id, e.time_unit, e.metric_date, e.value, e.timezone, e.metadata"
)


def _stored_cte() -> str:
    """The stored rows of the round's keys, and some of their neighbours.

    A descent of the unique index costs several times as much as reading the entry next to
    the one before, and a file repeats each (entity, metric, time unit) series over many
    dates. So the round's keys are grouped into runs — one series, dates within the same
    window of ``_RUN_STEPS`` steps of its unit — and each run is read as one range scan
    from its first date to its last: a file of consecutive dates costs one descent per
    run, not per row, and scattered dates cost one each (a run of one). The price: a run
    also reads the stored rows between its dates that the file does not name — at most
    ``_RUN_STEPS`` per run, so a file that samples a dense series sparsely (one date in
    ten, say) reads up to that many rows for each of its own. 16 steps keep that bound
    low and cost a 20-day batch of a daily series 2 or 3 descents instead of 20 (32 steps
    measured 2% faster on such a file, 8 steps 7% slower). ``OFFSET 0`` keeps each scan
    in its loop (an index scan per run), whatever the planner guesses of the stage table,
    which has no statistics.
    """
    return f"""
runs AS MATERIALIZED (
    SELECT entity_uid, metric_id, time_unit, min(metric_date) AS low, max(metric_date) AS high
    FROM {STAGE} WHERE valid
    GROUP BY entity_uid, metric_id, time_unit,
             (metric_date - DATE '2000-01-01') / ({_RUN_STEPS} * {_UNIT_DAYS})
), stored AS MATERIALIZED (
    SELECT e.* FROM runs r CROSS JOIN LATERAL (
        SELECT {_STORED_COLUMNS} FROM {_VALUES} e
        WHERE e.entity_uid = r.entity_uid AND e.metric_id = r.metric_id
          AND e.time_unit = r.time_unit AND e.metric_date BETWEEN r.low AND r.high
        OFFSET 0) e
)"""  # noqa: S608 - identifiers come from model metadata


def classify_statement(on_conflict: str) -> str:
    """Looking up the stored rows (``_stored_cte``) sorts the round into new, stored and
    identical, stored and different; then a plain ``INSERT`` of the new rows and (for
    ``update``) an ``UPDATE`` of the different ones. Identical rows are never written.

    Both writes trust a snapshot, so a concurrent writer can make them wrong: a key
    inserted meanwhile makes the unique index refuse the ``INSERT`` (the constraint
    decides), a row deleted meanwhile makes the ``UPDATE`` touch fewer rows than planned
    (reported, and compared by the caller). Either way the round is redone by
    ``on_conflict_statement``. counts: (created, updated, planned updates, stored).
    """
    update = on_conflict == OnConflict.UPDATE
    report = on_conflict == OnConflict.ERROR
    updated = (
        f"""UPDATE {_VALUES} AS t SET value = m.value, timezone = m.timezone,
        metadata = m.metadata, updated_at = %(now)s, {", ".join(CHANGE_SETS)}
    FROM matched m WHERE m.stored IS NOT NULL AND NOT m.same AND t.uid = m.stored
    RETURNING 1"""  # noqa: S608 - identifiers from model metadata; values are parameters
        if update
        else "SELECT 1 WHERE false"
    )
    conflicts = (
        "\nUNION ALL\nSELECT 'conflict', ln, NULL, 0, 0, 0, 0 FROM matched WHERE stored IS NOT NULL"
        if report
        else ""
    )
    planned = "count(*) FILTER (WHERE stored IS NOT NULL AND NOT same)" if update else "0"
    return f"""
WITH {_checked_cte()}, {_stored_cte()}, matched AS (
    SELECT c.ln, c.uid, c.context_type, c.entity_uid, c.metric_id, c.time_unit, c.metric_date,
           c.value, c.timezone, c.metadata, e.uid AS stored,
           (e.value = c.value AND e.timezone = c.timezone AND e.metadata = c.metadata) AS same
    FROM checked c
    LEFT JOIN stored e ON e.entity_uid = c.entity_uid AND e.metric_id = c.metric_id
        AND e.time_unit = c.time_unit AND e.metric_date = c.metric_date
    WHERE c.valid AND c.problem IS NULL
), written AS (
    {value_insert_sql(source=_NEW_MATCHED, conflict="error")}
), updated AS (
    {updated}
)
{_PROBLEMS}{conflicts}
UNION ALL
SELECT 'counts', 0, NULL, count(*) FILTER (WHERE stored IS NULL), (SELECT count(*) FROM updated),
       {planned}, count(*) FILTER (WHERE stored IS NOT NULL)
FROM matched
"""  # noqa: S608


def compare_statement(on_conflict: str) -> str:
    """Read-only: what ``classify_statement`` would find, without its writes — for the
    round of a re-run, where nothing is new or different and the write steps would only
    walk the round again. Rows that failed a check, conflicts (``error``) and counts:
    (0, 0, stored and different, stored), plus whether any row is new; the caller runs
    ``classify_statement`` when there is anything to write.
    """
    conflicts = (
        "\nUNION ALL\nSELECT 'conflict', ln, NULL, 0, 0, 0, 0 FROM matched WHERE stored"
        if on_conflict == OnConflict.ERROR
        else ""
    )
    return f"""
WITH {_checked_cte()}, {_stored_cte()}, matched AS (
    SELECT c.ln, e.uid IS NOT NULL AS stored,
           (e.value = c.value AND e.timezone = c.timezone AND e.metadata = c.metadata) AS same
    FROM checked c
    LEFT JOIN stored e ON e.entity_uid = c.entity_uid AND e.metric_id = c.metric_id
        AND e.time_unit = c.time_unit AND e.metric_date = c.metric_date
    WHERE c.valid AND c.problem IS NULL
)
{_PROBLEMS}{conflicts}
UNION ALL
SELECT 'counts', 0, NULL, count(*) FILTER (WHERE NOT stored), 0,
       count(*) FILTER (WHERE stored AND NOT same), count(*) FILTER (WHERE stored)
FROM matched
"""  # noqa: S608


def on_conflict_statement(on_conflict: str) -> str:
    """The race-proof form: ``INSERT … ON CONFLICT`` decides every key under the unique
    index's own locking. Slower (speculative insertion, a result row per write), so only
    for a round that lost a race in ``classify_statement``.
    counts: (created, updated, checked rows).
    """
    # Identical rows are left alone, for update too: no new tuple, no updated_at change.
    update = on_conflict == OnConflict.UPDATE
    same = (
        "\n          AND e.value = c.value AND e.timezone = c.timezone AND e.metadata = c.metadata"
        if update
        else ""
    )
    source = f"""{_SELECT_NEW}
    FROM checked c WHERE valid AND problem IS NULL AND NOT EXISTS (
        -- Rows already stored (identical ones, for update) never reach the INSERT: a
        -- read-only probe instead of a conflict, which would lock and dirty the row.
        SELECT 1 FROM {_VALUES} e
        WHERE e.entity_uid = c.entity_uid AND e.metric_id = c.metric_id
          AND e.time_unit = c.time_unit AND e.metric_date = c.metric_date{same})"""  # noqa: S608
    written = value_insert_sql(
        source=source,
        conflict="update" if update else "nothing",
        returning=(
            "t.entity_uid",
            "t.metric_id",
            "t.time_unit",
            "t.metric_date",
            "t.uid",
        ),
    )
    # A created row has its staged (new) uid, an updated one keeps its own: the system
    # column ``xmax`` that would tell them apart cannot be returned from a partitioned table.
    return f"""
WITH {_checked_cte()}, written_rows AS (
    {written}
), written AS (
    SELECT w.*, c.uid IS NOT NULL AS created
    FROM written_rows w LEFT JOIN checked c ON c.uid = w.uid
)
{_PROBLEMS}
UNION ALL
SELECT 'conflict', c.ln, NULL, 0, 0, 0, 0 FROM checked c
WHERE %(report_conflicts)s AND c.valid AND c.problem IS NULL AND NOT EXISTS (
    SELECT 1 FROM written w
    WHERE (w.entity_uid, w.metric_id, w.time_unit, w.metric_date)
        = (c.entity_uid, c.metric_id, c.time_unit, c.metric_date))
UNION ALL
SELECT 'counts', 0, NULL,
       (SELECT count(*) FROM written WHERE created),
       (SELECT count(*) FROM written WHERE NOT created),
       (SELECT count(*) FROM checked WHERE valid AND problem IS NULL), 0
"""  # noqa: S608
