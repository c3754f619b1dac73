"""Request id propagation and database-outage handling for every request."""

import logging
import re
import uuid
from contextvars import ContextVar

from django.db import DatabaseError, InterfaceError, OperationalError

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


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
            from .responses import service_unavailable_response

            return service_unavailable_response()
        return None
