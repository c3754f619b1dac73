"""Who is making the writes of the current request or command: the attribution every
write of a value stores on the row, and the history triggers copy from there.

A write path opens ``change_context`` around its work (the API per request, the admin per
save, the commands per run); the values table's defaults and every statement builder read
the context from here, so a writer cannot pass a half-filled attribution. Outside any
context a write is recorded as ``system``, like a write made in SQL by hand.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from uuid import UUID

from .constants import CHANGE_REASON_MAX_LENGTH, ChangeSource


@dataclass(frozen=True, slots=True)
class ChangeContext:
    """The attribution of a write: path, acting user and API key, batch, reason."""

    source: str = ChangeSource.SYSTEM
    user_uid: UUID | None = None
    key_uid: UUID | None = None
    batch_id: UUID | None = None
    reason: str | None = None

    def with_batch(self, batch_id: UUID | None) -> "ChangeContext":
        return replace(self, batch_id=batch_id)


# The default is a frozen dataclass: nothing can change it in place.
_current: ContextVar[ChangeContext] = ContextVar("metrics_change", default=ChangeContext())  # noqa: B039


def current_change() -> ChangeContext:
    """The attribution of the writes made now."""
    return _current.get()


@contextmanager
def change_context(
    *,
    source: str,
    user=None,
    reason: str | None = None,
    batch_id: UUID | None = None,
) -> Iterator[ChangeContext]:
    """Attribute the writes made inside the block to ``source`` and ``user`` (its API key,
    when it authenticated with one), with ``reason`` and ``batch_id``."""
    if reason is not None and len(reason) > CHANGE_REASON_MAX_LENGTH:
        raise ValueError(f"a change reason is at most {CHANGE_REASON_MAX_LENGTH} characters")
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    key = getattr(user, "api_key", None) if authenticated else None
    context = ChangeContext(
        source=source,
        user_uid=user.uid if authenticated else None,
        key_uid=key.uid if key is not None else None,
        batch_id=batch_id,
        reason=reason or None,
    )
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


# Defaults of the values table's attribution columns: an ORM insert made inside a context
# carries it without the caller naming the columns.
def current_source() -> str:
    return _current.get().source


def current_user_uid() -> UUID | None:
    return _current.get().user_uid


def current_key_uid() -> UUID | None:
    return _current.get().key_uid


def current_batch_id() -> UUID | None:
    return _current.get().batch_id


def current_reason() -> str | None:
    return _current.get().reason


def change_fields() -> dict[str, object]:
    """The current attribution as the values table's ``change_*`` fields."""
    change = _current.get()
    return {
        "change_source": change.source,
        "change_user_uid": change.user_uid,
        "change_key_uid": change.key_uid,
        "change_batch_id": change.batch_id,
        "change_reason": change.reason,
    }
