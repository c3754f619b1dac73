"""JSON error pages for requests that never reach a DRF view."""

from http import HTTPStatus

from django.http import HttpResponse

from .responses import error_response


def not_found(request, exception=None) -> HttpResponse:
    return error_response(HTTPStatus.NOT_FOUND, "not_found", "The resource was not found.")


def server_error(request) -> HttpResponse:
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR, "server_error", "An unexpected error occurred."
    )


def bad_request(request, exception=None) -> HttpResponse:
    return error_response(HTTPStatus.BAD_REQUEST, "validation_error", "The request is invalid.")


def permission_denied(request, exception=None) -> HttpResponse:
    return error_response(
        HTTPStatus.FORBIDDEN, "permission_denied", "You do not have permission to do this."
    )


def csrf_failure(request, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a form POST to a non-API view (the admin) without its token.

    The API views are CSRF-exempt (bearer tokens, no cookies), so an API client only sees
    this for a route served by a plain Django view; it must still get JSON, not HTML.
    """
    return error_response(
        HTTPStatus.FORBIDDEN, "permission_denied", "CSRF verification failed; reload the form."
    )
