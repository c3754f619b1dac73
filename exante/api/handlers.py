"""Error pages for requests that never reach a DRF view.

Everything answers with the JSON envelope, except the admin site: analysts use it in a
browser, so its errors keep Django's HTML pages.
"""

from http import HTTPStatus

from django.http import HttpResponse
from django.views import csrf, defaults

from .responses import error_response

ADMIN_PREFIX = "/admin/"


def _is_admin(request) -> bool:
    return request.path.startswith(ADMIN_PREFIX)


def not_found(request, exception=None) -> HttpResponse:
    if _is_admin(request):
        return defaults.page_not_found(request, exception)
    return error_response(HTTPStatus.NOT_FOUND, "not_found", "The resource was not found.")


def server_error(request) -> HttpResponse:
    if _is_admin(request):
        return defaults.server_error(request)
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR, "server_error", "An unexpected error occurred."
    )


def bad_request(request, exception=None) -> HttpResponse:
    if _is_admin(request):
        return defaults.bad_request(request, exception)
    return error_response(HTTPStatus.BAD_REQUEST, "validation_error", "The request is invalid.")


def permission_denied(request, exception=None) -> HttpResponse:
    if _is_admin(request):
        return defaults.permission_denied(request, exception)
    return error_response(
        HTTPStatus.FORBIDDEN, "permission_denied", "You do not have permission to do this."
    )


def csrf_failure(request, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a form POST to a non-API view (the admin) without its token.

    The API views are CSRF-exempt (bearer tokens, no cookies), so an API client only sees
    this for a route served by a plain Django view; it must still get JSON, not HTML.
    """
    if _is_admin(request):
        return csrf.csrf_failure(request, reason)
    return error_response(
        HTTPStatus.FORBIDDEN, "permission_denied", "CSRF verification failed; reload the form."
    )
