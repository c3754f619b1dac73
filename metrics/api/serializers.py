"""Shape-only serializers of the metrics API; business rules live in ``metrics.services``."""

from rest_framework import serializers

from exante.api.serializers import StrictBooleanField, StrictCharField, StrictFieldsMixin

from ..constants import METRIC_UID_PATTERN, RESERVED_METRIC_UIDS
from ..models import MetricDefinition


class MetricDefinitionSerializer(serializers.ModelSerializer):
    """A metric definition as the API shows it."""

    class Meta:
        model = MetricDefinition
        fields = [
            "uid",
            "name",
            "context_type",
            "description",
            "formula",
            "value_type",
            "storage_unit",
            "is_snapshot",
            "period_definition",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MetricDefinitionCreateSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    uid = serializers.RegexField(
        METRIC_UID_PATTERN,
        max_length=64,
        help_text="Slug `^[a-z][a-z0-9_]{1,63}$`; unique and immutable. "
        "`values` and `bulk` are reserved.",
        error_messages={
            "invalid": "uid must start with a lowercase letter and contain only lowercase "
            "letters, digits and underscores (2 to 64 characters)."
        },
    )
    name = StrictCharField(max_length=200, min_length=1)
    description = StrictCharField(max_length=10_000, required=False, allow_blank=True, default="")
    formula = StrictCharField(
        max_length=10_000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Documentation only; never evaluated.",
    )

    is_snapshot = StrictBooleanField(required=False, default=False)
    is_active = StrictBooleanField(required=False, default=True)

    class Meta:
        model = MetricDefinition
        fields = [
            "uid",
            "name",
            "context_type",
            "description",
            "formula",
            "value_type",
            "storage_unit",
            "is_snapshot",
            "period_definition",
            "is_active",
        ]

    def validate_uid(self, value: str) -> str:
        if value in RESERVED_METRIC_UIDS:
            raise serializers.ValidationError(f"{value!r} is reserved and cannot be a metric uid.")
        return value


class MetricDefinitionUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    """PATCH body: mutable fields, plus immutable ones accepted only with their current
    value (a different value is a 400 naming the field)."""

    name = StrictCharField(max_length=200, min_length=1, required=False)
    description = StrictCharField(max_length=10_000, required=False, allow_blank=True)
    formula = StrictCharField(max_length=10_000, required=False, allow_blank=True)
    is_active = StrictBooleanField(required=False)
    uid = StrictCharField(required=False, help_text="Immutable.")
    context_type = serializers.ChoiceField(
        choices=MetricDefinition._meta.get_field("context_type").choices,
        required=False,
        help_text="Immutable.",
    )
    value_type = serializers.ChoiceField(
        choices=MetricDefinition._meta.get_field("value_type").choices,
        required=False,
        help_text="Immutable.",
    )
    storage_unit = serializers.ChoiceField(
        choices=MetricDefinition._meta.get_field("storage_unit").choices,
        required=False,
        help_text="Immutable.",
    )
    is_snapshot = StrictBooleanField(required=False, help_text="Immutable.")
    period_definition = serializers.ChoiceField(
        choices=MetricDefinition._meta.get_field("period_definition").choices,
        required=False,
        help_text="Immutable.",
    )
