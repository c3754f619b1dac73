"""``GET /api/metrics/coverage/{context_type}/{entity_uid}`` and
``GET /api/organizations/{uid}/freshness`` (``metrics.coverage`` does the work)."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from entities.models import Organization
from exante.api.pagination import PageSourcePagination
from exante.api.schema import error_response

from ..constants import ContextType, TimeUnit
from ..coverage import metric_coverage, organization_freshness
from ..fields import NumberSchema, StrictDateField
from ..series import MAX_SERIES_METRICS
from .query import check_date_bounds, date_range_param, metric_definitions_param
from .serializers import QueryBooleanField
from .series import EntityScopedReadView
from .views import _CONTEXT_PARAM, _ENTITY_PARAM, DEFAULT_LIST_DAYS, MetricValueScopePermission

_METRIC_UID_HELP = (
    f"Required. Comma-separated metric uids, 1 to {MAX_SERIES_METRICS}, answered in this "
    "order. An unknown uid, or one of another context type than the path's, is a 400 "
    "listing it."
)


class CoverageQuerySerializer(serializers.Serializer):
    """Query parameters of coverage (shape only; unknown parameters are ignored)."""

    metric_uid = serializers.CharField(help_text=_METRIC_UID_HELP)
    time_unit = serializers.ChoiceField(
        choices=TimeUnit.choices, default=TimeUnit.DAY, help_text="The periods counted."
    )
    start_date = StrictDateField(
        required=False,
        help_text="Inclusive. Default: 90 days before today in the organization's timezone.",
    )
    end_date = StrictDateField(
        required=False,
        help_text="Inclusive. Default: today in the organization's timezone. A `start_date` "
        "after it is a 400.",
    )

    def validate(self, attrs):
        return check_date_bounds(attrs)


class MissingRunSerializer(serializers.Serializer):
    start = serializers.DateField(help_text="The first missing period's date.")
    end = serializers.DateField(help_text="The last missing period's date.")
    periods = serializers.IntegerField(help_text="How many periods the run spans.")


class MetricCoverageSerializer(serializers.Serializer):
    metric_uid = serializers.CharField()
    time_unit = serializers.ChoiceField(choices=TimeUnit.choices)
    expected = serializers.IntegerField(help_text="Periods that overlap the range.")
    present = serializers.IntegerField(help_text="Periods with a value.")
    coverage = NumberSchema(help_text="present / expected, 4 decimals.")
    first_date = serializers.DateField(allow_null=True)
    last_date = serializers.DateField(allow_null=True)
    missing = MissingRunSerializer(many=True, help_text="Maximal runs of periods without a value.")


class CoverageSerializer(serializers.Serializer):
    context_type = serializers.ChoiceField(choices=ContextType.choices)
    entity_uid = serializers.UUIDField()
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    metrics = MetricCoverageSerializer(many=True)


class EntityCoverageView(EntityScopedReadView):
    """``/api/metrics/coverage/{context_type}/{entity_uid}``."""

    serializer_class = CoverageSerializer

    @extend_schema(
        operation_id="metrics_coverage_retrieve",
        summary="Which periods of an entity's metrics have a value",
        parameters=[_CONTEXT_PARAM, _ENTITY_PARAM, CoverageQuerySerializer],
        description=(
            "For each metric: the `time_unit` periods that overlap `[start_date, "
            "end_date]` (`expected`), those with a value (`present`), `coverage`, the "
            "earliest and latest value dates, and the maximal runs of periods without a "
            "value (`missing`, each `{start, end, periods}` in period dates: days, first "
            "of the month or January 1st). A month or year period counts when its first "
            "day is in the range or the range starts inside it. Same visibility rules and "
            "404s as the value list."
        ),
        responses={
            200: CoverageSerializer,
            404: error_response(
                404, "`not_found`: unknown `context_type`, or the entity is not visible."
            ),
        },
    )
    def get(self, request, *args, **kwargs):
        query = CoverageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        definitions = metric_definitions_param(
            params["metric_uid"], context_type=self.context_type, max_count=MAX_SERIES_METRICS
        )
        start, end = date_range_param(
            params,
            self.entity,
            default_start=lambda *, end, today: today - timedelta(days=DEFAULT_LIST_DAYS),
        )
        data = metric_coverage(
            context_type=self.context_type,
            entity=self.entity,
            definitions=definitions,
            time_unit=params["time_unit"],
            start=start,
            end=end,
        )
        return Response(data)


# --- Freshness -------------------------------------------------------------------------------


class FreshnessQuerySerializer(serializers.Serializer):
    metric_uid = serializers.CharField(
        help_text=f"Required. Comma-separated metric uids, 1 to {MAX_SERIES_METRICS}, of any "
        "context type. An unknown uid is a 400 listing it."
    )
    time_unit = serializers.ChoiceField(
        choices=TimeUnit.choices, default=TimeUnit.DAY, help_text="The periods counted."
    )
    stale_after = serializers.IntegerField(
        min_value=0,
        max_value=100_000,
        default=1,
        help_text="Whole periods a series may be behind before it is stale (default 1).",
    )
    stale = QueryBooleanField(
        required=False, help_text="Only stale (`true`) or only fresh (`false`) rows."
    )


class FreshnessRowSerializer(serializers.Serializer):
    context_type = serializers.ChoiceField(choices=ContextType.choices)
    entity_uid = serializers.UUIDField()
    entity_name = serializers.CharField()
    metric_uid = serializers.CharField()
    last_date = serializers.DateField(allow_null=True, help_text="Newest value date; null: never.")
    periods_behind = serializers.IntegerField(
        allow_null=True,
        help_text="Whole periods from `last_date` to the current one (today in the "
        "organization's timezone); null when never written.",
    )
    stale = serializers.BooleanField(
        help_text="`last_date` is null or periods_behind > stale_after."
    )


_ORGANIZATION_PARAM = OpenApiParameter(
    "uid",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="uid of the organization; unknown and not visible are the same 404.",
)


class OrganizationFreshnessView(GenericAPIView):
    """``/api/organizations/{uid}/freshness``."""

    api_scope = "metrics"
    permission_classes = [MetricValueScopePermission]
    serializer_class = FreshnessRowSerializer
    # For the schema only: the organization is looked up through ``visible_to``.
    queryset = Organization.objects.none()
    pagination_class = PageSourcePagination
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        operation_id="organizations_freshness_list",
        summary="How far behind each series of an organization is",
        parameters=[_ORGANIZATION_PARAM, FreshnessQuerySerializer],
        description=(
            "One row per (entity, metric) that should have values: the organization itself "
            "for ORGANIZATION metrics, each active party for PARTY metrics, each active "
            "member for USER metrics. Sorted stale first, then most behind (a series never "
            "written first), then entity name, metric uid and entity uid. Needs read "
            "access to the organization (any membership role, `metrics:read`, or staff)."
        ),
        responses={
            200: FreshnessRowSerializer(many=True),
            404: error_response(404, "`not_found`: the organization is not visible."),
        },
    )
    def get(self, request, *args, **kwargs):
        organization = (
            Organization.objects.visible_to(request.user).filter(uid=kwargs["uid"]).first()
        )
        if organization is None:
            raise NotFound("No organization with this uid was found.")
        query = FreshnessQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        definitions = metric_definitions_param(
            params["metric_uid"], context_type=None, max_count=MAX_SERIES_METRICS
        )
        source = organization_freshness(
            organization=organization,
            definitions=definitions,
            time_unit=params["time_unit"],
            stale_after=params["stale_after"],
            stale=params.get("stale"),
        )
        return self.get_paginated_response(self.paginate_queryset(source))
