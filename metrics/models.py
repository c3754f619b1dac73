"""Metric definitions (a global catalogue) and metric values (one number per entity,
metric, time unit and date)."""

from django.db import models
from django.db.models import Q
from uuid6 import uuid7

from .constants import (
    METRIC_DEFINITION_UID_CONSTRAINT,
    METRIC_VALUE_UNIQUE_CONSTRAINT,
    VALUE_DECIMAL_PLACES,
    VALUE_MAX_DIGITS,
    Aggregation,
    ContextType,
    PeriodDefinition,
    StorageUnit,
    TimeUnit,
    ValueType,
    default_aggregation,
)


class MetricDefinition(models.Model):
    """What a metric means: its entity context, unit and period.

    The integer primary key is what values reference; ``uid`` is the public slug. Fields
    that change the meaning of stored values are immutable once created (enforced by the
    service layer), so values never silently change interpretation.
    """

    uid = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    context_type = models.CharField(
        max_length=12, choices=ContextType.choices, default=ContextType.ORGANIZATION
    )
    description = models.TextField(blank=True, default="")
    formula = models.TextField(blank=True, default="")
    value_type = models.CharField(max_length=10, choices=ValueType.choices, default=ValueType.COUNT)
    storage_unit = models.CharField(
        max_length=5, choices=StorageUnit.choices, default=StorageUnit.RAW
    )
    is_snapshot = models.BooleanField(default=False)
    period_definition = models.CharField(
        max_length=16, choices=PeriodDefinition.choices, default=PeriodDefinition.AS_OF_DATE
    )
    # Blank means "derive it": ``save`` fills it from the value type and is_snapshot.
    aggregation = models.CharField(
        max_length=7,
        choices=Aggregation.choices,
        blank=True,
        help_text="How day values combine into weeks, months and years. Leave empty for the "
        "default: last for a snapshot, average for a percentage, ratio or days, else sum.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["uid"]
        constraints = [
            models.UniqueConstraint(fields=["uid"], name=METRIC_DEFINITION_UID_CONSTRAINT),
            models.CheckConstraint(
                condition=Q(context_type__in=ContextType.values),
                name="metricdefinition_context_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(value_type__in=ValueType.values),
                name="metricdefinition_value_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(storage_unit__in=StorageUnit.values),
                name="metricdefinition_storage_unit_valid",
            ),
            models.CheckConstraint(
                condition=Q(period_definition__in=PeriodDefinition.values),
                name="metricdefinition_period_definition_valid",
            ),
            models.CheckConstraint(
                condition=Q(storage_unit=StorageUnit.RAW) | Q(value_type=ValueType.CURRENCY),
                name="metricdefinition_cents_only_currency",
            ),
            models.CheckConstraint(
                condition=Q(aggregation__in=Aggregation.values),
                name="metricdefinition_aggregation_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.uid

    def save(self, *args, **kwargs):
        # The derived default applies however a definition is made (service, admin,
        # fixtures); the check constraint refuses a row left without one.
        if not self.aggregation:
            self.aggregation = default_aggregation(
                value_type=self.value_type, is_snapshot=self.is_snapshot
            )
        super().save(*args, **kwargs)


class MetricValue(models.Model):
    """One number for one entity, metric, time unit and date.

    ``uid`` is a UUIDv7 primary key: time-ordered, so inserts append to the right edge of
    the index instead of splitting pages at random. ``entity_uid`` points into the table
    that ``context_type`` names; the service layer checks it exists, since a foreign key
    cannot span three tables.
    """

    uid = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # Only a single-column index on the metric: a (metric, time_unit, metric_date) index
    # would serve "one metric across entities by date" (admin filters, exports) but lures
    # PostgreSQL's LIMIT 1 planning of the latest-per-metric read into scanning every
    # entity's history backwards (see test_latest_per_metric_descends_the_unique_index).
    metric = models.ForeignKey(MetricDefinition, on_delete=models.PROTECT, related_name="values")
    context_type = models.CharField(max_length=12, choices=ContextType.choices)
    entity_uid = models.UUIDField()
    time_unit = models.CharField(max_length=5, choices=TimeUnit.choices, default=TimeUnit.DAY)
    metric_date = models.DateField()
    value = models.DecimalField(max_digits=VALUE_MAX_DIGITS, decimal_places=VALUE_DECIMAL_PLACES)
    timezone = models.CharField(max_length=64, default="UTC")
    metadata = models.JSONField(default=dict, blank=True)
    # Set on every row written by one bulk call or one import run, so it can be reverted.
    batch_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Equality columns first, the date last: the same index answers "this entity's
            # values for a metric and unit in a date range" and decides duplicates.
            models.UniqueConstraint(
                fields=["entity_uid", "metric", "time_unit", "metric_date"],
                name=METRIC_VALUE_UNIQUE_CONSTRAINT,
            ),
            models.CheckConstraint(
                condition=Q(context_type__in=ContextType.values),
                name="metricvalue_context_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(time_unit__in=TimeUnit.values),
                name="metricvalue_time_unit_valid",
            ),
        ]
        indexes = [
            # Only imported/bulk rows carry a batch id; a partial index keeps the rest out.
            models.Index(
                fields=["batch_id"],
                condition=Q(batch_id__isnull=False),
                name="metricvalue_batch_idx",
            ),
        ]

    def __str__(self) -> str:
        # Reads the definition: callers listing many values select_related("metric").
        entity = f"{self.context_type} {self.entity_uid}"
        return f"{self.metric.uid} {self.time_unit} {self.metric_date} ({entity})"
