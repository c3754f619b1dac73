"""Metric definitions (a global catalogue) and metric values (one number per entity,
metric, time unit and date)."""

from django.db import models
from django.db.models import Q
from uuid6 import uuid7

from . import changes
from .constants import (
    CHANGE_REASON_MAX_LENGTH,
    METRIC_DEFINITION_UID_CONSTRAINT,
    METRIC_VALUE_UNIQUE_CONSTRAINT,
    VALUE_DECIMAL_PLACES,
    VALUE_MAX_DIGITS,
    Aggregation,
    ChangeSource,
    ContextType,
    Operation,
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
    # The version and the attribution of the last change. Every write of the service sets
    # them (an update raises ``version`` by one); the history triggers copy them into the
    # history row. A write that leaves ``version`` alone is recorded as ``system`` (SQL by
    # hand), and the database defaults say the same of a row inserted by hand.
    version = models.PositiveIntegerField(default=1, db_default=1)
    change_source = models.CharField(
        max_length=6,
        choices=ChangeSource.choices,
        default=changes.current_source,
        db_default=ChangeSource.SYSTEM,
    )
    change_user_uid = models.UUIDField(null=True, blank=True, default=changes.current_user_uid)
    change_key_uid = models.UUIDField(null=True, blank=True, default=changes.current_key_uid)
    change_batch_id = models.UUIDField(null=True, blank=True, default=changes.current_batch_id)
    # NULL is "no reason given", the history's null; "" would be a reason.
    change_reason = models.CharField(  # noqa: DJ001
        max_length=CHANGE_REASON_MAX_LENGTH,
        null=True,
        blank=True,
        default=changes.current_reason,
    )

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


class MetricValueHistory(models.Model):
    """One version of a metric value: its state after a change, who made the change and
    the system time during which it was current (``recorded_at`` until the next version's,
    ``superseded_at``; open while current). A ``delete`` row holds the state deleted.

    Written only by the database's triggers on the values table (``metrics.history``),
    so every write is recorded whichever path made it; nothing in the service edits it.
    """

    pk = models.CompositePrimaryKey("value_uid", "version")
    value_uid = models.UUIDField()
    version = models.PositiveIntegerField()
    operation = models.CharField(max_length=6, choices=Operation.choices)
    # No constraint: a definition may be deleted once no value uses it, history or not.
    metric = models.ForeignKey(
        MetricDefinition,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    context_type = models.CharField(max_length=12, choices=ContextType.choices)
    entity_uid = models.UUIDField()
    time_unit = models.CharField(max_length=5, choices=TimeUnit.choices)
    metric_date = models.DateField()
    value = models.DecimalField(max_digits=VALUE_MAX_DIGITS, decimal_places=VALUE_DECIMAL_PLACES)
    timezone = models.CharField(max_length=64)
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    superseded_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=6, choices=ChangeSource.choices)
    recorded_by_uid = models.UUIDField(null=True, blank=True)
    api_key_uid = models.UUIDField(null=True, blank=True)
    batch_id = models.UUIDField(null=True, blank=True)
    reason = models.CharField(  # noqa: DJ001 - NULL is "no reason given"
        max_length=CHANGE_REASON_MAX_LENGTH, null=True, blank=True
    )

    class Meta:
        verbose_name = "metric value history"
        verbose_name_plural = "metric value history"
        indexes = [
            # The values table's key, then the system time: an as-of read of an entity is
            # a range scan of this index, like the current read of the unique one.
            models.Index(
                fields=["entity_uid", "metric", "time_unit", "metric_date", "recorded_at"],
                name="metricvaluehistory_asof_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.value_uid} v{self.version} {self.operation}"
