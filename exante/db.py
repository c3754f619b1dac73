"""Database helpers that differ between PostgreSQL and SQLite."""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import IntegrityError, connection, models, transaction


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def violated_constraint(exc: IntegrityError, model: type[models.Model]) -> str | None:
    """The name of the unique constraint of ``model`` that ``exc`` reports, if any.

    PostgreSQL names the constraint in the diagnostics. On a partitioned table it names
    the partition's own index (``<table>_<partition>`` is the table), so the key columns
    of its message lead back to the constraint, as SQLite's message does ("UNIQUE
    constraint failed: t.a, t.b").
    """
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        if not (diag.table_name or "").startswith(f"{model._meta.db_table}_"):
            return diag.constraint_name
        key = re.match(r"Key \(([^)]*)\)=", diag.message_detail or "")
        if key is None:
            return None
        columns = {part.strip().strip('"') for part in key.group(1).split(",")}
    else:
        text = str(exc)
        prefix = "UNIQUE constraint failed: "
        if not text.startswith(prefix):
            return None
        columns = {part.strip().split(".")[-1] for part in text[len(prefix) :].split(",")}
    meta = model._meta
    for constraint in meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
            names = {meta.get_field(name).column for name in constraint.fields}
            if names == columns:
                return constraint.name
    for field in meta.fields:
        if field.unique and {field.column} == columns:
            return f"{meta.db_table}_{field.column}_key"
    return None


@contextmanager
def conflict_on(
    model: type[models.Model], constraint: str, conflict: Callable[[], Exception]
) -> Iterator[None]:
    """Run the block's write in its own savepoint and let the database decide uniqueness:
    a violation of ``constraint`` raises ``conflict()`` (a domain 409); any other integrity
    error is re-raised as it is. ``conflict`` is called only after the savepoint rolled back,
    so it may query (for example for the existing row's uid)."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        if violated_constraint(exc, model) != constraint:
            raise
        raise conflict() from exc
