"""Request id propagation, request framing and database-outage handling."""

import io
import logging
import re
import uuid
from contextvars import ContextVar
from http import HTTPStatus

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.db import DatabaseError, InterfaceError, OperationalError

from .responses import error_response, service_unavailable_response

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

API_PREFIX = "/api/"
#: No identifier (uuid, metric uid, key uid) is longer; a longer segment names nothing.
MAX_PATH_SEGMENT_LENGTH = 255


class RequestIDMiddleware:
    """Echo a well-formed ``X-Request-ID`` or make one, and expose it to log records."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        # An arbitrary header value must not be able to forge log lines or headers.
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIDLogFilter(logging.Filter):
    """Adds ``request_id`` to every log record emitted while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # Django logs 4xx/5xx responses ("django.request") after the middleware chain
            # has returned, outside the context variable; that record carries the request.
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", None) or request_id_var.get()
        return True


def is_database_unavailable(exc: BaseException) -> bool:
    """True when the error means the database cannot be reached, not a bad query."""
    if isinstance(exc, InterfaceError):
        return True
    if isinstance(exc, OperationalError):
        text = str(exc).lower()
        # SQLite "database is locked" is contention, which is also worth a retry.
        return any(
            marker in text
            for marker in (
                "connection",
                "could not connect",
                "server closed",
                "terminating",
                "timeout",
                "locked",
                "the database system is",
                "canceling statement",
            )
        )
    return False


class DatabaseUnavailableMiddleware:
    """Turn a database outage in any view (admin, health, API) into a 503 envelope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DatabaseError) and is_database_unavailable(exception):
            return service_unavailable_response()
        return None


class RequestFramingMiddleware:
    """What an API request's line and body may be, decided before any view (and so before
    authentication or a query) runs:

    - a URL longer than ``API_MAX_URL_LENGTH`` is a 414;
    - a path segment that cannot be an identifier (a NUL, more than
      ``MAX_PATH_SEGMENT_LENGTH`` characters) is the 404 of any unknown object;
    - a ``Transfer-Encoding: chunked`` body is read whole (the server has de-chunked it and
      says so with ``wsgi.input_terminated``) or, where the server cannot, answered 411;
      Django would otherwise read it as empty, for lack of a ``Content-Length``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    def _refusal(self, request):
        meta = request.META
        length = len(meta.get("PATH_INFO", "")) + len(meta.get("QUERY_STRING", ""))
        if length > settings.API_MAX_URL_LENGTH:
            return error_response(
                HTTPStatus.REQUEST_URI_TOO_LONG,
                "uri_too_long",
                f"The URL is longer than {settings.API_MAX_URL_LENGTH} characters.",
            )
        if any(
            "\x00" in segment or len(segment) > MAX_PATH_SEGMENT_LENGTH
            for segment in request.path_info.split("/")
        ):
            return error_response(HTTPStatus.NOT_FOUND, "not_found", "The resource was not found.")
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            return self._read_chunked(request, settings.API_MAX_BULK_BODY_BYTES)
        return None

    @staticmethod
    def _read_chunked(request, limit: int):
        if not request.META.get("wsgi.input_terminated"):
            return error_response(
                HTTPStatus.LENGTH_REQUIRED,
                "length_required",
                "Send the body with a Content-Length header.",
            )
        # The largest body any endpoint takes; each endpoint's own limit is applied when
        # the body is parsed.
        body = request.META["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            return error_response(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "payload_too_large",
                f"The request body is larger than {limit} bytes.",
            )
        request.META["CONTENT_LENGTH"] = str(len(body))
        request._stream = LimitedStream(io.BytesIO(body), len(body))
        return None
