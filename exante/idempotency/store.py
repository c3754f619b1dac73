"""Claiming a key, storing its answer, releasing it. The database decides every race:
the unique (user, key) row is claimed by ``INSERT … ON CONFLICT DO NOTHING``, and the
request holding it keeps that row locked while it runs and stores its answer."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from .models import IdempotencyKey

#: Rows deleted per statement by ``purge_expired``.
PURGE_BATCH_SIZE = 1000

#: Attempts at claiming before answering "in progress": each failed one means another
#: request changed the row in between (took it over, or it was purged).
_CLAIM_ATTEMPTS = 3

_INSERT_COLUMNS = (
    "user_uid",
    "key",
    "method",
    "path",
    "fingerprint",
    "claim",
    "locked_until",
    "location",
    "etag",
    "created_at",
    "expires_at",
)


@dataclass(frozen=True)
class Claim:
    """This request holds the key: it runs, and only it may store the answer."""

    user_uid: uuid.UUID
    key: str
    token: uuid.UUID

    def rows(self):
        return IdempotencyKey.objects.filter(user_uid=self.user_uid, key=self.key, claim=self.token)


def _fresh_fields(*, user_uid, key, method, path, fingerprint, token, now) -> dict:
    return {
        "user_uid": user_uid,
        "key": key,
        "method": method,
        "path": path,
        "fingerprint": fingerprint,
        "claim": token,
        "locked_until": now + timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS),
        "location": "",
        "etag": "",
        "created_at": now,
        "expires_at": now + timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS),
    }


def _insert(fields: dict) -> bool:
    """One ``INSERT … ON CONFLICT DO NOTHING``; True when this request's row went in.
    It does not wait for a committed row's lock, so a request racing one that runs is
    answered at once."""
    connection = connections[router.db_for_write(IdempotencyKey)]
    quote = connection.ops.quote_name
    model_fields = {field.name: field for field in IdempotencyKey._meta.concrete_fields}
    params = [
        model_fields[column].get_db_prep_save(fields[column], connection)
        for column in _INSERT_COLUMNS
    ]
    # Identifiers come from model metadata; every value is a parameter.
    table = quote(IdempotencyKey._meta.db_table)
    columns = ", ".join(quote(column) for column in _INSERT_COLUMNS)
    placeholders = ", ".join(["%s"] * len(_INSERT_COLUMNS))
    conflict = f"ON CONFLICT ({quote('user_uid')}, {quote('key')}) DO NOTHING"
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) {conflict}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def _free(now) -> Q:
    """A row another request may take over: expired, or claimed by a request whose lock
    time has run out without an answer (its worker died)."""
    return Q(expires_at__lte=now) | Q(status_code__isnull=True, locked_until__lte=now)


def _is_taken(row: IdempotencyKey, now) -> bool:
    return row.expires_at > now and (row.status_code is not None or row.locked_until > now)


def claim(
    *, user_uid: uuid.UUID, key: str, method: str, path: str, fingerprint: str
) -> Claim | IdempotencyKey | None:
    """Claim ``key`` for this request.

    Returns a ``Claim`` (run the request), the row of the request that holds or has
    answered the key (replay it, or refuse), or ``None`` when the row kept changing under
    this request (answer "in progress"; a retry settles it).
    """
    token = uuid.uuid4()
    row = None
    for _ in range(_CLAIM_ATTEMPTS):
        now = timezone.now()
        fields = _fresh_fields(
            user_uid=user_uid,
            key=key,
            method=method,
            path=path,
            fingerprint=fingerprint,
            token=token,
            now=now,
        )
        if _insert(fields):
            return Claim(user_uid, key, token)
        row = IdempotencyKey.objects.filter(user_uid=user_uid, key=key).order_by().first()
        if row is None:
            continue  # purged since the insert saw it
        if _is_taken(row, now):
            return row
        # Conditional on the claim seen, so of two requests taking it over one wins. On
        # PostgreSQL it waits for a request still running past its lock time (it holds
        # the row), then finds the row answered and takes nothing.
        taken_over = (
            IdempotencyKey.objects.filter(pk=row.pk, claim=row.claim)
            .filter(_free(now))
            .update(status_code=None, body=None, **fields)
        )
        if taken_over:
            return Claim(user_uid, key, token)
    return row if row is not None and _is_taken(row, timezone.now()) else None


def hold(claim: Claim) -> bool:
    """Inside the request's transaction: lock the claimed row until the answer is stored
    (a retry cannot take it over meanwhile, however long the request runs). False when
    the claim was lost to a takeover before the request began."""
    return bool(list(claim.rows().select_for_update().values_list("pk", flat=True)[:1]))


def complete(claim: Claim, *, status_code: int, body: bytes, location: str, etag: str) -> None:
    """Store the answer, in the same transaction as the request's writes."""
    claim.rows().update(
        status_code=status_code, body=body, location=location, etag=etag, locked_until=None
    )


def release(claim: Claim) -> None:
    """Free the key of a request whose answer is not kept, so a retry runs again."""
    claim.rows().filter(status_code__isnull=True).delete()


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
