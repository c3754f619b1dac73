"""Domain exceptions with a stable code, raised by services and admins and shaped into the
error envelope by the API's exception handler."""

from rest_framework import exceptions, status


class DomainError(exceptions.APIException):
    """A business-rule failure with a stable code; may carry field errors and extra data."""

    def __init__(self, message: str | None = None, *, errors: dict | None = None, data=None):
        super().__init__(message or self.default_detail)
        self.errors = errors
        self.data = data


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"
