"""Database helpers that differ between PostgreSQL and SQLite."""

from django.db import IntegrityError, connection, models


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def violated_constraint(exc: IntegrityError, model: type[models.Model]) -> str | None:
    """The name of the unique constraint of ``model`` that ``exc`` reports, if any.

    PostgreSQL names the constraint in the diagnostics; SQLite only lists the columns
    ("UNIQUE constraint failed: t.a, t.b"), so those are matched against the model's
    constraints.
    """
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name
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
