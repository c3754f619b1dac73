"""``Idempotency-Key`` on every authenticated write under ``/api/`` (docs/idempotency.md).

A middleware rather than view code, so that no write endpoint can miss it. It claims the
key and stores the answer in one transaction wrapped around the whole view: ``__call__``
opens the transaction around a write that carries the header, and ``process_view``, which
Django calls inside it with the view it has resolved, claims the key (or answers from it)
just before the view runs. DRF authenticates only inside the view, so the middleware names
the caller itself, from the same credentials with the project's authentication classes,
short of loading the user (a JWT's uid is enough to key by; the view still verifies the
user and answers 401, which is never stored). Without the header it costs nothing: no
query, no transaction.
"""

import hashlib
import re
from http import HTTPStatus

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, transaction
from django.http import HttpResponse
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework_simplejwt.authentication import JWTAuthentication

from exante.idempotency import store

from .authentication import TokenClaimsAuthentication
from .middleware import API_PREFIX, is_database_unavailable
from .responses import error_response, service_unavailable_response

HEADER = "Idempotency-Key"
_META_HEADER = "HTTP_IDEMPOTENCY_KEY"
REPLAYED_HEADER = "Idempotent-Replayed"
WRITE_METHODS = frozenset({"POST", "PATCH", "DELETE"})
#: Logging in and refreshing tokens: no user yet to key by, and nothing worth replaying.
EXEMPT_PREFIX = "/api/auth/"
#: 1 to 255 printable ASCII characters (space included).
KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
#: Seconds a retry should wait while the first request with its key still runs.
IN_PROGRESS_RETRY_AFTER_SECONDS = 1


def applies_to(request) -> bool:
    """Whether the request is a write the header may key, as far as its method and path
    tell (whether its view takes the method is known once the path is resolved)."""
    return (
        request.method in WRITE_METHODS
        and request.path_info.startswith(API_PREFIX)
        and not request.path_info.startswith(EXEMPT_PREFIX)
    )


def view_takes(view, method: str) -> bool:
    """Whether the resolved view answers the method at all: a method it does not take is
    its 405, whatever the key says."""
    method = method.lower()
    actions = getattr(view, "actions", None)
    if actions is not None:
        return method in actions
    view_class = getattr(view, "cls", None)
    return view_class is not None and hasattr(view_class, method)


def is_storable(response) -> bool:
    """5xx, 401 and 429 are not kept: the client is meant to try again."""
    status = response.status_code
    return not response.streaming and status < 500 and status not in (401, 429)


def principal_uid(request):
    """The uid of the user the request's credentials name (an API key's user), or
    ``None`` when they name nobody: the view then answers 401 and no key is claimed."""
    forced = getattr(request, "_force_auth_user", None)  # DRF's test client
    if forced is not None:
        return forced.uid
    drf_request = Request(request)
    for authentication_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if issubclass(authentication_class, JWTAuthentication):
            authentication_class = TokenClaimsAuthentication
        try:
            found = authentication_class().authenticate(drf_request)
        except APIException:
            return None
        if found is not None:
            return found[0].uid
    return None


def fingerprint(request) -> str | None:
    """SHA-256 of method, path (trailing slash or not), query string and body; ``None``
    when the body is over the largest limit (the parser refuses it, unread)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if declared > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    digest = hashlib.sha256()
    for part in (
        request.method.encode(),
        request.path_info.rstrip("/").encode(),
        request.META.get("QUERY_STRING", "").encode("latin-1", "replace"),
    ):
        digest.update(part)
        digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


#: Attribute a view sets on its response to name the fields of ``data`` that are shown
#: once and never stored (a new API key's secret): the stored answer has them ``null``.
WITHHELD_ATTRIBUTE = "withheld_from_replay"


def stored_body(response) -> bytes:
    """The body kept for replays: the answer's own bytes, except that fields the view
    withholds are written as ``null`` (the one place a secret would otherwise be stored)."""
    withheld = getattr(response, WITHHELD_ATTRIBUTE, ())
    if not withheld:
        return response.content
    envelope = orjson.loads(response.content)
    for name in withheld:
        envelope["data"][name] = None
    return orjson.dumps(envelope)


def replay(row) -> HttpResponse:
    response = HttpResponse(
        bytes(row.body), status=row.status_code, content_type="application/json"
    )
    if row.location:
        response["Location"] = row.location
    if row.etag:
        response["ETag"] = row.etag
    response[REPLAYED_HEADER] = "true"
    return response


def in_progress() -> HttpResponse:
    response = error_response(
        HTTPStatus.CONFLICT,
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still running; retry shortly.",
    )
    response["Retry-After"] = str(IN_PROGRESS_RETRY_AFTER_SECONDS)
    return response


def mismatch() -> HttpResponse:
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "idempotency_key_mismatch",
        "This Idempotency-Key was used for a different request (method, path, query or "
        "body); use a new key for a new request.",
    )


def invalid_key() -> HttpResponse:
    return error_response(
        HTTPStatus.BAD_REQUEST,
        "invalid_idempotency_key",
        "The Idempotency-Key header is invalid.",
        errors={HEADER: ["Must be 1 to 255 printable ASCII characters."]},
    )


#: Request attributes: the key of a keyed write whose transaction is open, and, once
#: ``process_view`` has claimed it, the claim that the answer is stored under.
_OPEN_ATTRIBUTE = "_idempotency_key"
_CLAIM_ATTRIBUTE = "_idempotency_claim"


class IdempotencyMiddleware:
    """Runs a keyed write once and answers its retries from the stored answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.META.get(_META_HEADER)
        if key is None or not applies_to(request):
            return self.get_response(request)
        try:
            return self._run(request, key)
        except DatabaseError as exc:
            if is_database_unavailable(exc):
                return service_unavailable_response()
            raise

    def _run(self, request, key: str):
        """Claim (in ``process_view``), run and store in one transaction: the request's
        writes and its stored answer commit together, or neither is kept (an answer not
        stored rolls the request's writes back too, so that its retry can run)."""
        with transaction.atomic():
            setattr(request, _OPEN_ATTRIBUTE, key)
            response = self.get_response(request)
            claim = getattr(request, _CLAIM_ATTRIBUTE, None)
            if claim is None:
                # Not keyed after all (its view's 405, credentials naming nobody, a body
                # over the limit), or answered from the key: nothing to store.
                return response
            if not is_storable(response):
                transaction.set_rollback(True)
                return response
            user_uid, key = claim
            store.complete(
                user_uid=user_uid,
                key=key,
                status_code=response.status_code,
                body=stored_body(response),
                location=response.get("Location", ""),
                etag=response.get("ETag", ""),
            )
        return response

    def process_view(self, request, view, view_args, view_kwargs):
        """Inside the transaction ``__call__`` opened, with the view resolved: claims the
        key, or answers from it (a replay, 409 in progress, 422 mismatch, 400 malformed).
        Django's own resolution is reused: 0.29 M instructions less per keyed create."""
        key = getattr(request, _OPEN_ATTRIBUTE, None)
        if key is None or not view_takes(view, request.method):
            return None
        user_uid = principal_uid(request)
        if user_uid is None:
            return None
        if not KEY_PATTERN.fullmatch(key):
            return invalid_key()
        digest = fingerprint(request)
        if digest is None:
            return None
        try:
            found = store.claim(
                user_uid=user_uid,
                key=key,
                method=request.method,
                path=request.path_info,
                fingerprint=digest,
            )
        except DatabaseError as exc:
            # Raised here, it would reach no exception middleware: answered as they would.
            transaction.set_rollback(True)
            if is_database_unavailable(exc):
                return service_unavailable_response()
            raise
        if found is not None:
            return self._answer_from(found, digest)
        setattr(request, _CLAIM_ATTRIBUTE, (user_uid, key))
        return None

    @staticmethod
    def _answer_from(found, digest: str) -> HttpResponse:
        if found.fingerprint != digest:
            return mismatch()
        if not found.is_complete:
            return in_progress()
        return replay(found)
