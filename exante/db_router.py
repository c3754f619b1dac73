"""Reads on a streaming replica, with read-your-writes (docs/scale.md).

Without a ``replica`` database (``DATABASE_REPLICA_URL`` unset) every query uses the
primary and nothing here does any work. With one, a read goes to the replica only when
all of these hold:

- it runs inside a request that ``ReadReplicaMiddleware`` opened for the replica: a safe
  method (GET, HEAD, OPTIONS) outside the admin. Management commands, the admin, a
  request that writes, and code outside any request use the primary;
- the request's user is known (authenticated by the API, or anonymous) and has not
  written within ``REPLICA_PIN_SECONDS``: every write request pins its user in the cache,
  which Redis shares between workers and servers;
- the model is not one that decides who may do what (users, memberships, keys, tokens,
  sessions, idempotency keys): a revoked key or membership stops working at once;
- the replica answered its last check, no more than ``REPLICA_MAX_LAG_SECONDS`` behind.
"""

import time
from collections.abc import Callable
from contextlib import suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.functional import LazyObject, empty

REPLICA_DB_ALIAS = "replica"

#: Models whose reads always see the newest state: who a principal is and what it may do.
PRIMARY_ONLY_MODELS = frozenset(
    {
        "entities.user",
        "entities.membership",
        "entities.apikey",
        "entities.invitation",
        "token_blacklist.outstandingtoken",
        "token_blacklist.blacklistedtoken",
        "sessions.session",
        "idempotency.idempotencykey",
        "auth.permission",
        "auth.group",
        "contenttypes.contenttype",
    }
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_PREFIX = "/admin/"

# Replica states, as /readyz reports them.
REPLICA_OK = "ok"
REPLICA_LAGGING = "lagging"
REPLICA_UNREACHABLE = "unreachable"

# Seconds a standby is behind: 0 when it has replayed all it received (an idle primary sends
# nothing, so the last replay's age alone would read as lag); NULL, unknown and so too far
# behind, when it streams from no primary. A primary is 0 behind itself.
_LAG_SQL = """
    SELECT CASE
      WHEN NOT pg_is_in_recovery() THEN 0
      WHEN NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN NULL
      WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
      ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
    END
"""


def replica_configured() -> bool:
    return bool(settings.DATABASE_REPLICA_URL)


@dataclass
class ReadState:
    """What one request allows: replica reads at all, and (once known) for its user."""

    replica_allowed: bool
    user_pinned: Callable[[Any], bool]
    request: Any = None
    used_replica: bool = False
    _pinned: dict[Any, bool] = field(default_factory=dict)

    def principal(self) -> Any:
        """The request's user once it is known: the user the API authenticated, or an
        evaluated session user; ``None`` while it is not known yet (reads then use the
        primary, and so do the authentication's own)."""
        if self.request is None:
            return None
        user = self.request.__dict__.get("user")
        if isinstance(user, LazyObject):
            # Evaluating it here would run the session's queries inside this decision.
            wrapped = user._wrapped
            return None if wrapped is empty else wrapped
        return user

    def pinned(self, user: Any) -> bool:
        key = user_key(user)
        if key is None:
            return False
        if key not in self._pinned:
            self._pinned[key] = self.user_pinned(key)
        return self._pinned[key]


_state: ContextVar[ReadState | None] = ContextVar("read_state", default=None)


def choose_read_alias(model_label: str, state: ReadState | None, replica_ok: Callable[[], bool]):
    """The alias a read of ``model_label`` uses; ``replica_ok`` is called last, only when
    everything else allows the replica."""
    if state is None or not state.replica_allowed or model_label in PRIMARY_ONLY_MODELS:
        return DEFAULT_DB_ALIAS
    user = state.principal()
    if user is None or state.pinned(user):
        return DEFAULT_DB_ALIAS
    if not replica_ok():
        return DEFAULT_DB_ALIAS
    state.used_replica = True
    return REPLICA_DB_ALIAS


def replica_state(connection=None) -> str:
    """Ask the replica how far behind it is: ok, lagging, or unreachable. A broken
    connection is closed so the next check reconnects."""
    conn = connection if connection is not None else connections[REPLICA_DB_ALIAS]
    try:
        with conn.cursor() as cursor:
            if conn.vendor == "postgresql":
                cursor.execute(_LAG_SQL)
                lag = cursor.fetchone()[0]
            else:
                cursor.execute("SELECT 1")
                lag = 0
    except Exception:
        # Whatever the driver raised, the replica cannot serve this read.
        with suppress(Exception):
            conn.close()
        return REPLICA_UNREACHABLE
    if lag is None or float(lag) > settings.REPLICA_MAX_LAG_SECONDS:
        return REPLICA_LAGGING
    return REPLICA_OK


class ReplicaHealth:
    """The last check's answer, kept for ``REPLICA_CHECK_SECONDS`` in this process."""

    def __init__(self, check: Callable[[], str] = replica_state, clock=time.monotonic):
        self.check = check
        self.clock = clock
        self.checked_at: float | None = None
        self.state = REPLICA_UNREACHABLE

    def usable(self) -> bool:
        now = self.clock()
        if self.checked_at is None or now - self.checked_at >= settings.REPLICA_CHECK_SECONDS:
            self.state = self.check()
            self.checked_at = now
        return self.state == REPLICA_OK

    def mark_unreachable(self) -> None:
        """A read on the replica failed: use the primary until the next check."""
        self.state = REPLICA_UNREACHABLE
        self.checked_at = self.clock()


replica_health = ReplicaHealth()


def user_key(user: Any) -> Any:
    """What a user is pinned by: the uid every kind of authenticated user carries (a
    loaded user, the claims of a token); ``None`` for anonymous."""
    if not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "uid", None)


def _pin_key(user_uid: Any) -> str:
    return f"replica-pin:{user_uid}"


def pin_user(user_uid: Any) -> None:
    """The user's reads use the primary for the next ``REPLICA_PIN_SECONDS``."""
    if settings.REPLICA_PIN_SECONDS > 0:
        cache.set(_pin_key(user_uid), 1, timeout=settings.REPLICA_PIN_SECONDS)


def user_pinned(user_uid: Any) -> bool:
    return cache.get(_pin_key(user_uid)) is not None


class ReplicaRouter:
    """Writes, migrations and relations: the primary. Reads: ``choose_read_alias``."""

    def db_for_read(self, model, **hints):
        if not replica_configured():
            return None
        return choose_read_alias(model._meta.label_lower, _state.get(), replica_health.usable)

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # Both aliases hold the same data.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


class ReadReplicaMiddleware:
    """Open the request's read state; after a request that writes, pin its user. A safe
    request that met an unavailable database on the replica (503) runs again on the
    primary, and the replica is left alone until its next check: a replica that stops
    between two checks costs no request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_configured():
            return self.get_response(request)
        writes = request.method not in SAFE_METHODS
        allowed = not writes and not request.path_info.startswith(ADMIN_PREFIX)
        state, response = self._respond(request, allowed)
        if state.used_replica and response.status_code == HTTPStatus.SERVICE_UNAVAILABLE:
            replica_health.mark_unreachable()
            state, response = self._respond(request, False)
        if writes:
            key = user_key(state.principal())
            if key is not None:
                pin_user(key)
        return response

    def _respond(self, request, replica_allowed: bool):
        state = ReadState(replica_allowed=replica_allowed, user_pinned=user_pinned, request=request)
        token = _state.set(state)
        try:
            return state, self.get_response(request)
        finally:
            _state.reset(token)
