"""Domain exceptions and the one handler that shapes every DRF error."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from exante.errors import DomainError

from .middleware import is_database_unavailable
from .responses import RETRY_AFTER_SECONDS, error_envelope

logger = logging.getLogger("exante.api")

NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable; retry shortly."
    default_code = "service_unavailable"


# Stable codes for DRF's own exceptions (each error answer carries one).
_CODES: list[tuple[type[Exception], str]] = [
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "authentication_failed"),
    (InvalidToken, "authentication_failed"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.Throttled, "throttled"),
    (exceptions.ParseError, "validation_error"),
    (exceptions.ValidationError, "validation_error"),
]

_MESSAGES = {
    "validation_error": "The request is invalid; see errors for each field.",
    "not_authenticated": "Authentication credentials were not provided.",
    "authentication_failed": "The credentials are invalid, expired or revoked.",
    "not_found": "The resource was not found.",
}


def _flatten(detail) -> dict[str, list[str]]:
    """DRF error detail (nested dicts and lists) → ``{field: [message, ...]}``.

    Nested fields use dotted paths (``items.3.value``) so a client can point at them.
    """
    out: dict[str, list[str]] = {}

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            if all(not isinstance(item, (dict, list)) for item in node):
                out.setdefault(path or NON_FIELD, []).extend(str(item) for item in node)
            else:
                for index, child in enumerate(node):
                    if child:
                        walk(child, f"{path}.{index}" if path else str(index))
        else:
            out.setdefault(path or NON_FIELD, []).append(str(node))

    walk(detail, "")
    return out


def _code_for(exc: exceptions.APIException) -> str:
    for klass, code in _CODES:
        if isinstance(exc, klass):
            return code
    return exc.default_code if isinstance(exc.default_code, str) else "error"


def _message_for(exc: exceptions.APIException, code: str) -> str:
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        if len(errors) == 1:
            ((field, messages),) = errors.items()
            if field == NON_FIELD:
                return messages[0]
            return f"{field}: {messages[0]}"
        return _MESSAGES["validation_error"]
    if code in ("authentication_failed", "not_authenticated") and not isinstance(exc.detail, str):
        return _MESSAGES[code]
    if isinstance(exc.detail, str):
        return str(exc.detail)
    return _MESSAGES.get(code, "The request failed.")


def envelope_exception_handler(exc, context):
    """Shape every exception raised in a DRF view into the error envelope."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else _MESSAGES["not_found"])
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD: exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, TokenError):
        exc = InvalidToken(str(exc))
    elif isinstance(exc, DatabaseError) and is_database_unavailable(exc):
        exc = ServiceUnavailable()

    headers: dict[str, str] = {}
    if not isinstance(exc, exceptions.APIException):
        set_rollback()
        logger.exception("Unhandled error in %s", context["view"].__class__.__name__)
        body = error_envelope(500, "server_error", "An unexpected error occurred.")
        return Response(body, status=500)

    code = _code_for(exc)
    errors = None
    data = None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
    elif isinstance(exc, exceptions.ParseError):
        errors = {NON_FIELD: [str(exc.detail)]}
    if isinstance(exc, DomainError):
        errors = exc.errors
        data = exc.data
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        request = context.get("request")
        view = context.get("view")
        header = view.get_authenticate_header(request) if view and request else None
        headers["WWW-Authenticate"] = header or 'Bearer realm="api"'
        exc.status_code = status.HTTP_401_UNAUTHORIZED
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait) + 1)
    if isinstance(exc, ServiceUnavailable):
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)

    set_rollback()
    body = error_envelope(exc.status_code, code, _message_for(exc, code), errors=errors, data=data)
    return Response(body, status=exc.status_code, headers=headers)
