"""The one INSERT of metric values: every writer of many values builds its statement here.

The columns, the table and the unique key come from the model, so a field added to
``MetricValue`` reaches every writer; a writer only says where the rows come from
(``source``) and what a stored key does (``conflict``).
"""

from collections.abc import Sequence
from uuid import UUID

from django.db import connection

from ..changes import change_fields
from ..constants import METRIC_VALUE_UNIQUE_CONSTRAINT
from ..models import MetricValue

#: The values table's columns, in the order every ``source`` produces them.
VALUE_INSERT_COLUMNS: tuple[str, ...] = tuple(
    field.column for field in MetricValue._meta.local_concrete_fields
)

#: Columns an update of a stored key overwrites; ``updated_at`` follows them.
VALUE_UPDATE_COLUMNS = ("value", "timezone", "metadata")

#: The attribution of a change, which every write sets (the history triggers copy it).
CHANGE_COLUMNS = tuple(change_fields())


def change_params(*, batch_id: UUID | None = None) -> dict[str, object]:
    """The current change's attribution (``metrics.changes``) as query parameters named
    like ``CHANGE_COLUMNS``, ready for the database; ``batch_id`` is the writing run's."""
    fields = change_fields()
    if batch_id is not None:
        fields["change_batch_id"] = batch_id
    meta = MetricValue._meta
    return {
        name: meta.get_field(name).get_db_prep_save(value, connection)
        for name, value in fields.items()
    }


#: ``SET`` items of an update that records a change: the version goes up by one and the
#: attribution is the statement's parameters (``change_params``).
CHANGE_SETS = ("version = version + 1", *(f"{c} = %({c})s" for c in CHANGE_COLUMNS))


def _unique_key_columns() -> tuple[str, ...]:
    meta = MetricValue._meta
    [constraint] = [c for c in meta.constraints if c.name == METRIC_VALUE_UNIQUE_CONSTRAINT]
    return tuple(meta.get_field(name).column for name in constraint.fields)


#: The columns of the key ``ON CONFLICT`` names: (entity, metric, time unit, date).
VALUE_KEY_COLUMNS = _unique_key_columns()

#: The alias of the table in the statement (``RETURNING t.…``).
TABLE_ALIAS = "t"


def value_insert_sql(
    *, source: str, conflict: str = "nothing", returning: Sequence[str] = ()
) -> str:
    """``INSERT INTO <values table> (<VALUE_INSERT_COLUMNS>) <source> [ON CONFLICT …]
    [RETURNING …]``, for PostgreSQL and SQLite.

    ``source``: a ``SELECT …`` or ``VALUES …`` giving ``VALUE_INSERT_COLUMNS`` in order.
    ``conflict``:

    - ``"nothing"``: a stored key leaves the stored row alone (``DO NOTHING``);
    - ``"update"``: a stored key takes the new value, timezone, ``_metadata``,
      ``updated_at`` and attribution, and its version goes up by one — unless all three
      are equal, so an identical row is never written (no new row version, no
      ``updated_at`` change, no history);
    - ``"error"``: no ``ON CONFLICT``: the unique constraint refuses a stored key, and
      the caller decides what that means (a lost race, a round to redo).

    ``returning``: expressions for ``RETURNING``, as given. The table is aliased ``t``.
    """
    quote = connection.ops.quote_name
    table = quote(MetricValue._meta.db_table)
    columns = ", ".join(quote(c) for c in VALUE_INSERT_COLUMNS)
    table = f"{table} AS {TABLE_ALIAS}"
    head = f"INSERT INTO {table} ({columns}) {source.strip()}"
    return head + _conflict_clause(source, conflict) + _returning(returning)


def _conflict_clause(source: str, conflict: str) -> str:
    if conflict == "error":
        return ""
    quote = connection.ops.quote_name
    key = ", ".join(quote(c) for c in VALUE_KEY_COLUMNS)
    # SQLite reads ``ON`` after ``INSERT … SELECT … FROM x`` as a join's unless the SELECT
    # has a WHERE clause.
    is_select = source.lstrip()[:6].upper() == "SELECT"
    where = " WHERE true" if is_select and " WHERE " not in source.upper() else ""
    if conflict == "nothing":
        return f"{where} ON CONFLICT ({key}) DO NOTHING"
    if conflict != "update":
        raise ValueError(f"conflict must be nothing, update or error, not {conflict!r}")
    # The version goes up by one, as for every recorded change (the history triggers).
    sets = ", ".join(
        [
            f"{quote(c)} = EXCLUDED.{quote(c)}"
            for c in (*VALUE_UPDATE_COLUMNS, "updated_at", *CHANGE_COLUMNS)
        ]
        + [f"{quote('version')} = {TABLE_ALIAS}.{quote('version')} + 1"]
    )
    changed = " OR ".join(
        f"{TABLE_ALIAS}.{quote(c)} IS DISTINCT FROM EXCLUDED.{quote(c)}"
        for c in VALUE_UPDATE_COLUMNS
    )
    return f"{where} ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE {changed}"


def _returning(expressions: Sequence[str]) -> str:
    return f" RETURNING {', '.join(expressions)}" if expressions else ""
