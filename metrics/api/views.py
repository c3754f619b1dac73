"""Metrics API views: thin wrappers that parse, call a service or selector, serialize."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.response import Response

from exante.api.permissions import IsStaffOrReadOnly
from exante.api.schema import error_response

from .. import services
from ..filters import MetricDefinitionFilter
from ..models import MetricDefinition
from .serializers import (
    MetricDefinitionCreateSerializer,
    MetricDefinitionSerializer,
    MetricDefinitionUpdateSerializer,
)


@extend_schema_view(
    list=extend_schema(
        summary="List metric definitions",
        description="The global catalogue of metrics. Default sort `uid`.",
    ),
    retrieve=extend_schema(summary="Get a metric definition"),
    create=extend_schema(
        summary="Create a metric definition",
        description="Staff only. A duplicate `uid` is a 409 `duplicate_metric`.",
        request=MetricDefinitionCreateSerializer,
        responses={
            201: MetricDefinitionSerializer,
            409: error_response(409, "`duplicate_metric`: the uid is taken."),
        },
    ),
    partial_update=extend_schema(
        summary="Update a metric definition",
        description=(
            "Staff only. Changes `name`, `description`, `formula`, `is_active`. An immutable "
            "field (`uid`, `context_type`, `value_type`, `storage_unit`, `is_snapshot`, "
            "`period_definition`) sent with a different value is a 400 naming it; sent with "
            "its current value it is ignored."
        ),
        request=MetricDefinitionUpdateSerializer,
        responses={200: MetricDefinitionSerializer},
    ),
    destroy=extend_schema(
        summary="Delete a metric definition",
        description=(
            "Staff only, and only while no value references it; otherwise 409 "
            "`metric_in_use` (set `is_active=false` to retire the metric instead)."
        ),
        responses={
            200: OpenApiResponse(description="Deleted; `data` is `{}`."),
            409: error_response(409, "`metric_in_use`: values reference this metric."),
        },
    ),
)
class MetricDefinitionViewSet(viewsets.ModelViewSet):
    """Metric definitions (spec §3.2)."""

    queryset = MetricDefinition.objects.all()
    serializer_class = MetricDefinitionSerializer
    permission_classes = [IsStaffOrReadOnly]
    lookup_field = "uid"
    lookup_value_regex = "[^/]+"
    filterset_class = MetricDefinitionFilter
    sort_fields = {
        "uid": "uid",
        "name": "name",
        "context_type": "context_type",
        "value_type": "value_type",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    default_sort = "uid"
    sort_tiebreak = ("uid",)
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request, *args, **kwargs):
        serializer = MetricDefinitionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        definition = services.metric_definition_create(**serializer.validated_data)
        body = MetricDefinitionSerializer(definition).data
        location = request.build_absolute_uri(f"/api/metrics/{definition.uid}")
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

    def partial_update(self, request, *args, **kwargs):
        definition = self.get_object()
        serializer = MetricDefinitionUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        definition = services.metric_definition_update(
            definition=definition, **serializer.validated_data
        )
        return Response(MetricDefinitionSerializer(definition).data)

    def destroy(self, request, *args, **kwargs):
        services.metric_definition_delete(definition=self.get_object())
        return Response({})
