"""Admin forms for values and definitions: every write is a ``metrics.services`` call, so
the admin enforces exactly the API's rules (see ``exante.admin_forms.ServiceModelForm``)."""

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from exante.admin_forms import ServiceModelForm

from .constants import (
    CHANGE_REASON_MAX_LENGTH,
    METRIC_UID_PATTERN,
    RESERVED_METRIC_UIDS,
    ContextType,
    StorageUnit,
    ValueType,
)
from .models import MetricDefinition, MetricValue
from .selectors import entity_get
from .services import (
    DEFINITION_MUTABLE_FIELDS,
    EntityRef,
    metric_definition_create,
    metric_definition_update,
    metric_value_build,
    metric_value_save_new,
    metric_value_update,
)


def plain_number(value: Decimal, *, grouping: bool = False) -> str:
    """``Decimal('12000.000000')`` → ``'12000'`` (or ``'12,000'``): no exponent, no padding."""
    normal = value.normalize()
    if normal == 0:
        normal = Decimal(0)  # no "-0" or "0E-6"
    return format(normal, ",f" if grouping else "f")


def format_value(value: Decimal | None, definition: MetricDefinition) -> str:
    """A stored value as an analyst reads it: cents as currency units, percentages with %."""
    if value is None:
        return "—"
    if definition.storage_unit == StorageUnit.CENTS:
        return f"{value / 100:,.2f}"
    value_type = definition.value_type
    if value_type == ValueType.CURRENCY:
        cents = value.quantize(Decimal("0.01"))
        return f"{cents:,.2f}" if cents == value else plain_number(value, grouping=True)
    if value_type == ValueType.PERCENTAGE:
        return f"{plain_number(value)}%"
    if value_type == ValueType.DAYS:
        return f"{plain_number(value)} {'day' if value == 1 else 'days'}"
    if value_type == ValueType.COUNT:
        return plain_number(value, grouping=True)
    return plain_number(value)


class MetricValueForm(ServiceModelForm):
    """Add: every key field plus the value; change: value and timezone only."""

    # A string, not a DecimalField: ``normalize_value`` parses and rounds exactly as the
    # API does (half-even to 6 places) instead of the form rejecting a 7th decimal.
    value = forms.CharField(
        max_length=64,
        help_text="In the metric's storage unit: a cents metric takes whole cents "
        "(12345 is 123.45). Rounded half-even to 6 decimals.",
    )
    timezone = forms.CharField(
        max_length=64,
        required=False,
        help_text="IANA name, e.g. Europe/Paris. Blank on add: the entity's organization's.",
    )

    reason = forms.CharField(
        max_length=CHANGE_REASON_MAX_LENGTH,
        required=False,
        help_text="Optional: why you make this change. Kept in the value's history.",
    )

    error_field_aliases = {"metric_uid": "metric", "_metadata": None}

    class Meta:
        model = MetricValue
        fields = ("metric", "context_type", "entity_uid", "time_unit", "metric_date")
        labels = {"entity_uid": "Entity uid"}
        help_texts = {
            "entity_uid": "The uid of the organization, party or user (shown in its list).",
            "metric_date": "Months take the 1st of the month, years January 1st.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.adding = self.instance._state.adding
        if not self.adding:
            if "value" in self.fields:
                self.initial["value"] = plain_number(self.instance.value)
                if self.instance.metric.storage_unit == StorageUnit.CENTS:
                    self.fields[
                        "value"
                    ].help_text = (
                        "This metric is stored in cents: enter whole cents (12345 is 123.45)."
                    )
            if "timezone" in self.fields:
                self.fields["timezone"].required = True
                self.fields["timezone"].help_text = "IANA name, e.g. Europe/Paris."

    def apply(self, cleaned_data):
        if not self.adding:
            changes = {
                name: cleaned_data[name]
                for name in ("value", "timezone")
                if name in self.changed_data and name in cleaned_data
            }
            return metric_value_update(instance=self.instance, **changes)
        context_type = cleaned_data["context_type"]
        entity = entity_get(context_type=context_type, entity_uid=cleaned_data["entity_uid"])
        if entity is None:
            kind = ContextType(context_type).label.lower()
            raise ValidationError({"entity_uid": [f"No {kind} has this uid."]})
        built = metric_value_build(
            definition=cleaned_data["metric"],
            entity=EntityRef.of(context_type, entity),
            time_unit=cleaned_data["time_unit"],
            metric_date=cleaned_data["metric_date"],
            value=cleaned_data["value"],
            timezone=cleaned_data.get("timezone") or None,
        )
        return metric_value_save_new(built)


class MetricDefinitionForm(ServiceModelForm):
    """Add: ``metric_definition_create``; change: ``metric_definition_update`` of the
    mutable fields (the immutable ones are read-only on that page)."""

    uid = forms.RegexField(
        METRIC_UID_PATTERN,
        max_length=64,
        help_text="Lowercase slug, e.g. total_ar. Cannot be changed later.",
        error_messages={
            "invalid": "uid must start with a lowercase letter and contain only lowercase "
            "letters, digits and underscores (2–64 characters)."
        },
    )

    class Meta:
        model = MetricDefinition
        fields = (
            "uid",
            "name",
            "context_type",
            "value_type",
            "storage_unit",
            "is_snapshot",
            "period_definition",
            "aggregation",
            "description",
            "formula",
            "is_active",
        )

    def clean_uid(self):
        uid = self.cleaned_data["uid"]
        if uid in RESERVED_METRIC_UIDS:
            raise ValidationError(f"{uid!r} is reserved and cannot be a metric uid.")
        return uid

    def apply(self, cleaned_data):
        if self.instance._state.adding:
            fields = {name: cleaned_data[name] for name in self._meta.fields if name in self.fields}
            return metric_definition_create(**fields)
        changes = {
            name: cleaned_data[name] for name in DEFINITION_MUTABLE_FIELDS if name in self.fields
        }
        return metric_definition_update(definition=self.instance, **changes)
