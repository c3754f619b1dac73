"""Claiming a key and storing its answer, in the transaction of the request itself.

The claim is the key's row, inserted by ``INSERT … ON CONFLICT`` inside the request's
transaction and answered by an UPDATE in that same transaction: the write and its stored
answer commit together, in one commit, or neither is kept, and a worker that dies takes
its claim with it (the database rolls its transaction back). On PostgreSQL a
transaction-level advisory lock on (user, key) is taken in the same statement, without
waiting, so a request racing one that runs is told so at once instead of queueing behind
it; while the request holds the claim, ``IDEMPOTENCY_LOCK_SECONDS`` bounds how long it may
sit idle in its transaction before the database ends it and frees the key. SQLite runs one
writing transaction at a time, so there a racing request waits and then finds the answer.
"""

import hashlib
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from .models import IdempotencyKey

#: Rows deleted per statement by ``purge_expired``.
PURGE_BATCH_SIZE = 1000

_CLAIM_COLUMNS = (
    "user_uid",
    "key",
    "method",
    "path",
    "fingerprint",
    "location",
    "etag",
    "created_at",
    "expires_at",
)
#: Taken over when the conflicting row has expired: it behaves as a new key.
_RENEWED_COLUMNS = ("method", "path", "fingerprint", "location", "etag", "created_at", "expires_at")


def _connection():
    return connections[router.db_for_write(IdempotencyKey)]


def lock_id(user_uid: uuid.UUID, key: str) -> int:
    """The advisory lock of one user's key: 64 bits of a SHA-256 (a collision only makes
    a request wait for an unrelated one)."""
    digest = hashlib.sha256(user_uid.bytes + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _claim_sql(connection) -> str:
    quote = connection.ops.quote_name
    table = quote(IdempotencyKey._meta.db_table)
    columns = ", ".join(quote(column) for column in _CLAIM_COLUMNS)
    values = ", ".join(["%s"] * len(_CLAIM_COLUMNS))
    renewed = ", ".join(
        f"{quote(column)} = EXCLUDED.{quote(column)}" for column in _RENEWED_COLUMNS
    )
    renewed += f", {quote('status_code')} = NULL, {quote('body')} = NULL"
    if connection.vendor == "postgresql":
        # The lock is taken before the row is written; when another request holds it, no
        # row is written and nothing waits. Holding it, the request may not sit idle in
        # its transaction for longer than the lock time (a stuck worker frees the key).
        source = (
            f"SELECT {values} WHERE pg_try_advisory_xact_lock(%s) "
            "AND set_config('idle_in_transaction_session_timeout', %s, true) IS NOT NULL"
        )
    else:
        source = f"VALUES ({values})"
    # Identifiers come from model metadata; every value is a parameter.
    return (
        f"INSERT INTO {table} ({columns}) {source} "
        f"ON CONFLICT ({quote('user_uid')}, {quote('key')}) DO UPDATE SET {renewed} "
        f"WHERE {table}.{quote('expires_at')} <= %s"
    )


def claim(
    *, user_uid: uuid.UUID, key: str, method: str, path: str, fingerprint: str
) -> IdempotencyKey | None:
    """Claim ``key`` for this request, inside its transaction (``transaction.atomic``).

    Returns ``None`` when the key is this request's (new, or expired and renewed): run it,
    then ``complete``. Otherwise returns the key's row as another request left it: its
    stored answer, or, with no answer (``status_code`` null, or no row found at all), a
    request that still runs it.
    """
    connection = _connection()
    now = timezone.now()
    values = {
        "user_uid": user_uid,
        "key": key,
        "method": method,
        "path": path,
        "fingerprint": fingerprint,
        "location": "",
        "etag": "",
        "created_at": now,
        "expires_at": now + timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS),
    }
    fields = {field.name: field for field in IdempotencyKey._meta.concrete_fields}
    params = [
        fields[column].get_db_prep_save(values[column], connection) for column in _CLAIM_COLUMNS
    ]
    if connection.vendor == "postgresql":
        params += [lock_id(user_uid, key), f"{settings.IDEMPOTENCY_LOCK_SECONDS}s"]
    params.append(fields["expires_at"].get_db_prep_save(now, connection))
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(connection), params)
        if cursor.rowcount == 1:
            return None
    found = IdempotencyKey.objects.filter(user_uid=user_uid, key=key).order_by().first()
    if found is None or found.expires_at <= now:
        # Not visible yet, or being renewed: another request holds the lock and runs.
        return IdempotencyKey(fingerprint=fingerprint)
    return found


def complete(
    *, user_uid: uuid.UUID, key: str, status_code: int, body: bytes, location: str, etag: str
) -> None:
    """Store the answer of the request holding the key, in its transaction."""
    connection = _connection()
    user_uid = IdempotencyKey._meta.get_field("user_uid").get_db_prep_save(user_uid, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            _complete_sql(connection), [status_code, body, location, etag, user_uid, key]
        )


def _complete_sql(connection) -> str:
    """The answer's UPDATE."""
    quote = connection.ops.quote_name
    assignments = ", ".join(
        f"{quote(column)} = %s" for column in ("status_code", "body", "location", "etag")
    )
    table = quote(IdempotencyKey._meta.db_table)
    where = f"{quote('user_uid')} = %s AND {quote('key')} = %s"
    return f"UPDATE {table} SET {assignments} WHERE {where}"  # noqa: S608 - no value inlined


def purge_expired(*, batch_size: int = PURGE_BATCH_SIZE):
    """Delete expired keys, ``batch_size`` rows per statement (each in its own
    transaction, so a large backlog holds no long lock); yields each batch's count."""
    now = timezone.now()
    expired = IdempotencyKey.objects.filter(expires_at__lte=now)
    while True:
        with transaction.atomic():
            ids = list(expired.order_by().values_list("pk", flat=True)[:batch_size])
            if not ids:
                return
            deleted, _ = IdempotencyKey.objects.filter(pk__in=ids, expires_at__lte=now).delete()
        yield deleted
