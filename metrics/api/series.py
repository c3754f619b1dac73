"""``GET /api/metrics/series/{context_type}/{entity_uid}``: an entity's values combined
into periods (``metrics.series`` does the work)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from exante.api.schema import error_response

from ..constants import (
    Aggregation,
    Bucket,
    ContextType,
    StorageUnit,
    ValueType,
)
from ..fields import NumberSchema, StrictDateField
from ..periods import year_before
from ..series import (
    COMPARE_MODES,
    FILL_MODES,
    MAX_BUCKETS,
    MAX_SERIES_METRICS,
    metric_series,
    series_range_errors,
)
from .query import check_date_bounds, date_range_param, metric_definitions_param
from .scoping import EntityScopedMixin
from .views import _CONTEXT_PARAM, _ENTITY_PARAM, MetricValueScopePermission

ACROSS_PARTIES = "parties"


class SeriesQuerySerializer(serializers.Serializer):
    """Query parameters of a series (shape only; unknown parameters are ignored)."""

    metric_uid = serializers.CharField(
        help_text=f"Required. Comma-separated metric uids, 1 to {MAX_SERIES_METRICS}; the "
        "series come back in this order. An unknown uid, or a metric of another context "
        "type than the path's (than `PARTY` with `across=parties`), is a 400 listing it."
    )
    bucket = serializers.ChoiceField(
        choices=Bucket.choices,
        default=Bucket.MONTH,
        help_text="`day`; `week` (ISO, Monday to Sunday, labelled by its Monday); `month`; "
        "`quarter` (starting January, April, July, October); `year`.",
    )
    start_date = StrictDateField(
        required=False,
        help_text="Inclusive. Default: the same calendar date a year before `end_date` "
        "(February 29th becomes February 28th).",
    )
    end_date = StrictDateField(
        required=False,
        help_text="Inclusive. Default: today in the timezone of the entity's organization "
        f"(a user's own for USER). A `start_date` after it, or more than {MAX_BUCKETS} "
        "buckets, is a 400.",
    )
    fill = serializers.ChoiceField(
        choices=FILL_MODES,
        required=False,
        help_text="What an empty bucket shows: `zero` (0) or `previous` (the last non-null "
        "point before it in this answer). Without it an empty bucket is `null`. `count` "
        "and `source` are never filled.",
    )
    compare = serializers.ChoiceField(
        choices=COMPARE_MODES,
        required=False,
        help_text="`previous_period`: the same number of buckets just before; "
        "`previous_year`: the same buckets a year earlier (52 weeks earlier for weeks). "
        "Adds `compare_value`, `change` and `change_pct` to every point.",
    )
    across = serializers.ChoiceField(
        choices=[ACROSS_PARTIES],
        required=False,
        help_text="`parties`, on an ORGANIZATION path with PARTY metrics only: each active "
        "party is bucketed, then the parties combine per bucket (`sum` and `last` add up, "
        "`average` averages, `min`/`max` take the extreme). Points add `parties`.",
    )

    def validate(self, attrs):
        return check_date_bounds(attrs)


class SeriesPointSerializer(serializers.Serializer):
    """One bucket of a series (documentation of the answer)."""

    start = serializers.DateField(help_text="The bucket's first day.")
    end = serializers.DateField(help_text="The bucket's last day.")
    value = NumberSchema(
        allow_null=True,
        help_text="The metric's aggregation over the bucket's values inside the range; "
        "`null` when there are none (unless `fill`).",
    )
    count = serializers.IntegerField(help_text="Values used (1 for a stored value).")
    expected = serializers.IntegerField(
        help_text="Days of the bucket inside the range (1 for a stored value); across "
        "parties, summed over the active parties."
    )
    coverage = NumberSchema(
        allow_null=True,
        help_text="count / expected, 4 decimals; null only across an organization without "
        "active parties (nothing is expected).",
    )
    source = serializers.ChoiceField(
        choices=["stored", "days"],
        allow_null=True,
        help_text="`stored`: a stored month or year value stood for the bucket; `days`: "
        "day values were combined; `null`: nothing was found.",
    )
    compare_value = NumberSchema(allow_null=True, required=False, help_text="With `compare`.")
    change = NumberSchema(
        allow_null=True, required=False, help_text="value − compare_value, with `compare`."
    )
    change_pct = NumberSchema(
        allow_null=True,
        required=False,
        help_text="(value − compare_value) / |compare_value| × 100, 4 decimals; `null` "
        "when either side is null or compare_value is 0.",
    )
    parties = serializers.IntegerField(
        required=False, help_text="With `across=parties`: how many parties contributed."
    )


class SeriesMetricSerializer(serializers.Serializer):
    metric_uid = serializers.CharField()
    metric_name = serializers.CharField()
    aggregation = serializers.ChoiceField(choices=Aggregation.choices)
    value_type = serializers.ChoiceField(choices=ValueType.choices)
    storage_unit = serializers.ChoiceField(choices=StorageUnit.choices)
    points = SeriesPointSerializer(many=True)


class SeriesSerializer(serializers.Serializer):
    context_type = serializers.ChoiceField(choices=ContextType.choices)
    entity_uid = serializers.UUIDField()
    bucket = serializers.ChoiceField(choices=Bucket.choices)
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    series = SeriesMetricSerializer(many=True)


class EntityScopedReadView(EntityScopedMixin, GenericAPIView):
    """A read of one entity's values: the value list's visibility, 404s and scopes."""

    api_scope = "metrics"
    permission_classes = [MetricValueScopePermission]
    http_method_names = ["get", "head", "options"]


class EntitySeriesView(EntityScopedReadView):
    """``/api/metrics/series/{context_type}/{entity_uid}``."""

    serializer_class = SeriesSerializer

    @extend_schema(
        operation_id="metrics_series_retrieve",
        summary="An entity's metric values combined into periods",
        parameters=[_CONTEXT_PARAM, _ENTITY_PARAM, SeriesQuerySerializer],
        description=(
            "Every bucket that overlaps `[start_date, end_date]` is listed, in order, with "
            "no holes. A point's value is the metric's `aggregation` over its `day` values "
            "dated inside both the bucket and the range: `sum`, `average` (mean of the "
            "values present), `min`, `max`, or `last` (the value of the latest date "
            "present). For `month` and `year` buckets a stored value of that `time_unit` "
            "for the bucket wins over the days (`source: stored`, `count: 1`). Numbers are "
            "JSON numbers with at most 6 decimals. Same visibility rules and 404s as the "
            "value list; needs read access to the entity."
        ),
        responses={
            200: SeriesSerializer,
            404: error_response(
                404, "`not_found`: unknown `context_type`, or the entity is not visible."
            ),
        },
    )
    def get(self, request, *args, **kwargs):
        query = SeriesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        across_parties = params.get("across") == ACROSS_PARTIES
        if across_parties and self.context_type != ContextType.ORGANIZATION:
            raise ValidationError({"across": ["across=parties needs an ORGANIZATION path."]})
        definitions = metric_definitions_param(
            params["metric_uid"],
            context_type=ContextType.PARTY if across_parties else self.context_type,
            max_count=MAX_SERIES_METRICS,
        )
        start, end = date_range_param(
            params, self.entity, default_start=lambda *, end, today: year_before(end)
        )
        if errors := series_range_errors(start, end, params["bucket"]):
            raise ValidationError(errors)
        data = metric_series(
            context_type=self.context_type,
            entity=self.entity,
            definitions=definitions,
            bucket=params["bucket"],
            start=start,
            end=end,
            fill=params.get("fill"),
            compare=params.get("compare"),
            across_parties=across_parties,
        )
        return Response(data)
