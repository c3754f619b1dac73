"""Domain conflicts of the metrics app, each with its stable code."""

from rest_framework import status

from exante.errors import Conflict, DomainError


class DuplicateValue(Conflict):
    default_detail = "A value for this entity, metric, time unit and date already exists."
    default_code = "duplicate_value"


class DuplicateMetric(Conflict):
    default_detail = "A metric definition with this uid already exists."
    default_code = "duplicate_metric"


class MetricInUse(Conflict):
    default_detail = (
        "This metric has stored values and cannot be deleted; set is_active=false to retire it."
    )
    default_code = "metric_in_use"


class PreconditionFailed(DomainError):
    """``If-Match`` named none of the value's current version; ``data`` holds it."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The value has changed: If-Match names none of its current version."
    default_code = "precondition_failed"

    def __init__(self, version: int):
        super().__init__(data={"version": version})


class ValueNotFound(DomainError):
    """The value went away while a write waited for it."""

    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "No metric value with this uid was found."
    default_code = "not_found"
