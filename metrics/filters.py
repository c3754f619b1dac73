"""Query filters of the metrics API."""

import django_filters
from django.db.models import Q

from exante.filters import StrictBooleanFilter

from .constants import ContextType, ValueType
from .models import MetricDefinition


class MetricDefinitionFilter(django_filters.FilterSet):
    is_active = StrictBooleanFilter(help_text="`true`/`false`/`1`/`0`.")
    value_type = django_filters.ChoiceFilter(choices=ValueType.choices)
    context_type = django_filters.ChoiceFilter(choices=ContextType.choices)
    search = django_filters.CharFilter(
        method="filter_search",
        help_text="Case-insensitive substring of `uid` or `name`.",
    )

    class Meta:
        model = MetricDefinition
        fields = ["is_active", "value_type", "context_type"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(uid__icontains=value) | Q(name__icontains=value))
