"""Error envelopes for responses built outside DRF (404/500 handlers, middleware)."""

from http import HTTPStatus

import orjson
from django.http import HttpResponse

#: Seconds a client should wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5


def error_envelope(
    status_code: int,
    code: str,
    message: str,
    errors: dict | None = None,
    data: object = None,
) -> dict:
    """The one shape of every error body (spec §2.1)."""
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
