"""The history of metric values, kept by the database: triggers on the values table write
one row of ``metrics_metricvaluehistory`` per change, whichever path made it.

How a write says who made it: every write of the service sets the row's ``version`` (an
update and a delete raise it by exactly one) and its ``change_*`` columns. A change that
leaves ``version`` as it was is a write made by hand in SQL: it is recorded as ``system``
and the row's version is raised to match. A delete of the service first raises the
version with the data unchanged (which records nothing), so the deleted row carries the
deleter; a deleted row whose version already has a history row was deleted by hand.
An update that changes none of value, timezone and ``_metadata`` records nothing.

PostgreSQL: statement-level triggers with transition tables, so a statement writing a
million rows runs each trigger once. SQLite: row triggers.
"""

from django.db import migrations

VALUES = "metrics_metricvalue"
HISTORY = "metrics_metricvaluehistory"
COLUMNS = (
    "value_uid, version, operation, metric_id, context_type, entity_uid, time_unit, "
    "metric_date, value, timezone, metadata, created_at, updated_at, recorded_at, "
    "superseded_at, source, recorded_by_uid, api_key_uid, batch_id, reason"
)
STATE = "{r}.metric_id, {r}.context_type, {r}.entity_uid, {r}.time_unit, {r}.metric_date, " \
    "{r}.value, {r}.timezone, {r}.metadata, {r}.created_at, {r}.updated_at"
ATTRIBUTION = "{r}.change_source, {r}.change_user_uid, {r}.change_key_uid, " \
    "{r}.change_batch_id, {r}.change_reason"
SYSTEM = "'system', NULL, NULL, NULL, NULL"
CLEAR_ATTRIBUTION = (
    "change_source = 'system', change_user_uid = NULL, change_key_uid = NULL, "
    "change_batch_id = NULL, change_reason = NULL"
)


def _pick(condition: str, r: str) -> str:
    """The row's attribution when ``condition`` holds, else ``system``'s."""
    return (
        f"CASE WHEN {condition} THEN {r}.change_source ELSE 'system' END, "
        f"CASE WHEN {condition} THEN {r}.change_user_uid END, "
        f"CASE WHEN {condition} THEN {r}.change_key_uid END, "
        f"CASE WHEN {condition} THEN {r}.change_batch_id END, "
        f"CASE WHEN {condition} THEN {r}.change_reason END"
    )


_PG_DATA_CHANGED = (
    "(n.value, n.timezone, n.metadata) IS DISTINCT FROM (o.value, o.timezone, o.metadata)"
)

POSTGRESQL = f"""
CREATE FUNCTION metrics_value_history_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := clock_timestamp();
BEGIN
    INSERT INTO {HISTORY} ({COLUMNS})
    SELECT n.uid, n.version, 'create', {STATE.format(r="n")}, at, NULL, {ATTRIBUTION.format(r="n")}
    FROM new_rows n;
    RETURN NULL;
END $$;

CREATE FUNCTION metrics_value_history_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := clock_timestamp();
BEGIN
    WITH changed AS MATERIALIZED (
        SELECT n.*, o.version AS old_version, n.version = o.version + 1 AS stamped
        FROM new_rows n JOIN old_rows o ON o.uid = n.uid
        WHERE {_PG_DATA_CHANGED}
    ), closed AS (
        UPDATE {HISTORY} h SET superseded_at = at FROM changed c
        WHERE h.value_uid = c.uid AND h.superseded_at IS NULL
    )
    INSERT INTO {HISTORY} ({COLUMNS})
    SELECT c.uid, c.old_version + 1, 'update', {STATE.format(r="c")}, at, NULL,
           {_pick("c.stamped", "c")}
    FROM changed c;
    -- A change made by hand left the version alone: raise it to match the history. Only
    -- when there is one: a statement trigger fires for an UPDATE of no rows too.
    IF EXISTS (
        SELECT 1 FROM new_rows n JOIN old_rows o ON o.uid = n.uid
        WHERE n.version <> o.version + 1 AND {_PG_DATA_CHANGED}
    ) THEN
        UPDATE {VALUES} v SET version = o.version + 1, {CLEAR_ATTRIBUTION}
        FROM new_rows n JOIN old_rows o ON o.uid = n.uid
        WHERE v.uid = n.uid AND n.version <> o.version + 1 AND {_PG_DATA_CHANGED};
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION metrics_value_history_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := clock_timestamp();
BEGIN
    WITH gone AS MATERIALIZED (
        -- A version without a history row was raised by the service's delete: it carries
        -- the deleter. Otherwise the row was deleted by hand.
        SELECT o.*, NOT EXISTS (
            SELECT 1 FROM {HISTORY} h WHERE h.value_uid = o.uid AND h.version = o.version
        ) AS stamped
        FROM old_rows o
    ), closed AS (
        UPDATE {HISTORY} h SET superseded_at = at FROM gone g
        WHERE h.value_uid = g.uid AND h.superseded_at IS NULL
    )
    INSERT INTO {HISTORY} ({COLUMNS})
    SELECT g.uid, CASE WHEN g.stamped THEN g.version ELSE g.version + 1 END, 'delete',
           {STATE.format(r="g")}, at, NULL, {_pick("g.stamped", "g")}
    FROM gone g;
    RETURN NULL;
END $$;

CREATE TRIGGER metrics_value_history_insert AFTER INSERT ON {VALUES}
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION metrics_value_history_insert();
CREATE TRIGGER metrics_value_history_update AFTER UPDATE ON {VALUES}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION metrics_value_history_update();
CREATE TRIGGER metrics_value_history_delete AFTER DELETE ON {VALUES}
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION metrics_value_history_delete();
"""

POSTGRESQL_DROP = f"""
DROP TRIGGER IF EXISTS metrics_value_history_insert ON {VALUES};
DROP TRIGGER IF EXISTS metrics_value_history_update ON {VALUES};
DROP TRIGGER IF EXISTS metrics_value_history_delete ON {VALUES};
DROP FUNCTION IF EXISTS metrics_value_history_insert();
DROP FUNCTION IF EXISTS metrics_value_history_update();
DROP FUNCTION IF EXISTS metrics_value_history_delete();
"""

# The service's timestamps are text with microseconds; ``now`` gives milliseconds.
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
_DATA_CHANGED = (
    "NEW.value IS NOT OLD.value OR NEW.timezone IS NOT OLD.timezone "
    "OR NEW.metadata IS NOT OLD.metadata"
)
_STAMPED_DELETE = (
    f"NOT EXISTS (SELECT 1 FROM {HISTORY} h WHERE h.value_uid = OLD.uid "
    "AND h.version = OLD.version)"
)

SQLITE = [
    f"""CREATE TRIGGER metrics_value_history_insert AFTER INSERT ON {VALUES}
BEGIN
    INSERT INTO {HISTORY} ({COLUMNS})
    VALUES (NEW.uid, NEW.version, 'create', {STATE.format(r="NEW")}, {_SQLITE_NOW}, NULL,
            {ATTRIBUTION.format(r="NEW")});
END""",
    f"""CREATE TRIGGER metrics_value_history_update AFTER UPDATE ON {VALUES}
WHEN {_DATA_CHANGED}
BEGIN
    UPDATE {HISTORY} SET superseded_at = {_SQLITE_NOW}
    WHERE value_uid = OLD.uid AND superseded_at IS NULL;
    INSERT INTO {HISTORY} ({COLUMNS})
    VALUES (NEW.uid, OLD.version + 1, 'update', {STATE.format(r="NEW")}, {_SQLITE_NOW}, NULL,
            {_pick("NEW.version = OLD.version + 1", "NEW")});
    UPDATE {VALUES} SET version = OLD.version + 1, {CLEAR_ATTRIBUTION}
    WHERE uid = NEW.uid AND NEW.version <> OLD.version + 1;
END""",
    f"""CREATE TRIGGER metrics_value_history_delete AFTER DELETE ON {VALUES}
BEGIN
    INSERT INTO {HISTORY} ({COLUMNS})
    SELECT OLD.uid, CASE WHEN {_STAMPED_DELETE} THEN OLD.version ELSE OLD.version + 1 END,
           'delete', {STATE.format(r="OLD")}, {_SQLITE_NOW}, NULL,
           {_pick(_STAMPED_DELETE, "OLD")};
    UPDATE {HISTORY} SET superseded_at = {_SQLITE_NOW}
    WHERE value_uid = OLD.uid AND superseded_at IS NULL AND operation <> 'delete';
END""",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS metrics_value_history_{event}"
    for event in ("insert", "update", "delete")
]

# Values stored before the history existed start it as version 1, made by ``system``.
BACKFILL = f"""
INSERT INTO {HISTORY} ({COLUMNS})
SELECT v.uid, v.version, 'create', {STATE.format(r="v")}, v.updated_at, NULL, {SYSTEM}
FROM {VALUES} v
"""


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    schema_editor.execute(BACKFILL)
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL)
    elif vendor == "sqlite":
        for statement in SQLITE:
            schema_editor.execute(statement)
    else:
        raise NotImplementedError(f"no history triggers for {vendor}")


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_DROP)
    else:
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0003_value_history")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
