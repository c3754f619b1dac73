"""Domain conflicts of the metrics app, each with its stable code."""

from exante.errors import Conflict


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
