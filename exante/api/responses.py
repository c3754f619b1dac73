"""Error envelopes for responses built outside DRF (404/500 handlers, middleware)."""

from functools import wraps
from http import HTTPStatus

import orjson
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

#: Seconds a client should wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5


def error_envelope(
    status_code: int,
    code: str,
    message: str,
    errors: dict | None = None,
    data: object = None,
) -> dict:
    """The one shape of every error body."""
    return {
        "status": "error",
        "status_code": status_code,
        "message": message,
        "code": code,
        "errors": errors,
        "data": data,
    }


def error_response(status_code: int, code: str, message: str, **kwargs) -> HttpResponse:
    body = orjson.dumps(error_envelope(status_code, code, message, **kwargs))
    return HttpResponse(body, status=status_code, content_type="application/json")


def service_unavailable_response() -> HttpResponse:
    response = error_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "service_unavailable",
        "The service is temporarily unavailable; retry shortly.",
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def require_get(view):
    """``require_GET`` for plain Django views, answering other methods with the 405 error
    envelope and ``Allow`` (Django's own answers an empty HTML 405). CSRF-exempt: a view
    that only reads has nothing to protect, and the CSRF check would otherwise answer a
    cookie-less POST with 403 before the 405 could be given."""

    @csrf_exempt
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"Method {request.method[:20]} is not allowed here; use GET.",
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapped
