"""Metrics API views: thin wrappers that parse, call a service or selector, serialize."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from http import HTTPStatus

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, status, viewsets
from rest_framework.exceptions import (
    APIException,
    NotFound,
    PermissionDenied,
)
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from entities.api.authentication import ApiKeyAuthentication
from entities.models import User
from entities.permissions import NOT_FETCHED, can_write_values
from exante.api.authentication import TokenClaimsAuthentication, load_user
from exante.api.pagination import WindowCountPagination
from exante.api.permissions import ApiScopePermission, IsStaffOrReadOnly
from exante.api.responses import error_response as plain_error_response
from exante.api.schema import error_response
from exante.api.sorting import SortFilter
from exante.observability import record_ingested

from .. import selectors, services
from ..constants import ChangeSource, ContextType
from ..fields import MetricValueCreateSerializer
from ..filters import MetricDefinitionFilter
from ..ingest.create import metric_value_create_checked
from ..models import MetricDefinition, MetricValue, MetricValueHistory
from ..services import EntityRef
from .changes import (
    IF_MATCH_PARAM,
    REASON_PARAM,
    etag,
    etag_header,
    if_match,
    request_change,
)
from .query import date_range_param, metric_definitions_param
from .scoping import ENTITY_NOT_FOUND, EntityScopedMixin
from .serializers import (
    TIMESTAMP_TEXT_ANNOTATIONS,
    VALUE_ROW_COLUMNS,
    MetricDefinitionCreateSerializer,
    MetricDefinitionSerializer,
    MetricDefinitionUpdateSerializer,
    MetricValueHistorySerializer,
    MetricValueListQuerySerializer,
    MetricValueRetrieveQuerySerializer,
    MetricValueSerializer,
    MetricValueUpdateSerializer,
    value_row,
)

#: Without dates, a value list covers the last 90 days up to today.
DEFAULT_LIST_DAYS = 90


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
    """The global catalogue of metric definitions: every caller reads it; staff, or a key
    with `metrics:admin`, change it."""

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


# --- Metric values ---------------------------------------------------------------------------

_CONTEXT_PARAM = OpenApiParameter(
    "context_type",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    enum=list(ContextType.values),
    description="Which table `entity_uid` lives in. Any other spelling (they are "
    "case-sensitive) is a 404 naming the allowed values.",
)
_ENTITY_PARAM = OpenApiParameter(
    "entity_uid",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="uid of the organization, party or user. Unknown and not visible to the "
    "caller are the same 404 (another tenant's entity is never disclosed).",
)
_VALUE_PARAM = OpenApiParameter(
    "value_uid",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="uid of the metric value. A value is visible exactly when its entity is; "
    "unknown and not visible are the same 404.",
)
_WRITE_DENIED = "You may read this {context}'s metric values but not write them."
_KEY_WRITE_DENIED = "This API key does not have the metrics:write scope."


def _check_write(user, entity, context_type: str, *, role=NOT_FETCHED) -> None:
    """403 unless ``user`` may write values of ``entity`` (``can_write_values`` decides,
    with ``role`` when the entity's query already fetched it; this only picks the message
    that tells the caller what is missing)."""
    if can_write_values(user, entity, role=role):
        return
    key = getattr(user, "api_key", None)
    if key is not None and not key.has_scope("metrics:write"):
        raise PermissionDenied(_KEY_WRITE_DENIED)
    raise PermissionDenied(_WRITE_DENIED.format(context=context_type.lower()))


_NOT_FOUND_404 = error_response(404, "`not_found`: no such value, or not visible to the caller.")
_PRECONDITION_412 = error_response(
    412,
    "`precondition_failed`: `If-Match` names none of the value's current version; nothing "
    'changed; `data` is `{"version": <current>}`.',
)


class MetricValueScopePermission(ApiScopePermission):
    """An API key needs some ``metrics`` scope to reach a value endpoint at all, but the
    write scope is checked later, by ``can_write_values`` (step 6 of the create order):
    a read-only key posting to an unknown entity gets the same 404, and one posting an
    invalid body the same 400, as a viewer would."""

    def has_permission(self, request, view) -> bool:
        key = getattr(request.user, "api_key", None)
        if key is None or request.method in SAFE_METHODS:
            return super().has_permission(request, view)
        scope = view.api_scope
        if key.has_scope(f"{scope}:write") or key.has_scope(f"{scope}:read"):
            return True
        self.message = f"This API key does not have the {scope}:write scope."
        return False


class _MetricValueViewMixin:
    """What every metric value view shares: the scope name API keys are checked against."""

    api_scope = "metrics"
    permission_classes = [MetricValueScopePermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]


@extend_schema_view(
    list=extend_schema(
        summary="List an entity's metric values",
        parameters=[_CONTEXT_PARAM, _ENTITY_PARAM, MetricValueListQuerySerializer],
        description=(
            "Values of one entity, one `time_unit` at a time, newest first by default "
            "(`-metric_date`, then `metric_uid` ascending, then the value `uid`, so pages "
            "never overlap). Without `latest`, only dates from `start_date` to `end_date` "
            "(both inclusive; defaults: the last 90 days up to today in the organization's "
            "timezone). With `latest=true`, the newest value of each metric, whatever its "
            "date. `per_page` is 1–1000 (default 100) for this list. `_metadata` is left "
            "out unless `include_metadata=true`. A metric of another context type in "
            "`metric_uid` is a 400, like an unknown one. Needs read access to the entity "
            "(any membership role, the `metrics:read` scope, or staff). With `as_of`, the "
            "list as the service held it at that instant, every other parameter applying "
            "as usual."
        ),
        responses={200: MetricValueSerializer(many=True)},
    ),
    create=extend_schema(
        summary="Create a metric value",
        parameters=[_CONTEXT_PARAM, _ENTITY_PARAM, REASON_PARAM, etag_header(201)],
        description=(
            "Checks, in this order, each with its own answer: (1) `context_type` not one "
            "of ORGANIZATION, PARTY, USER → 404 naming them; (2) the entity does not "
            "exist or is not visible → 404; (3) the body is invalid (unknown or missing "
            "fields, types, dates, value rules) → 400 naming each field, an unknown "
            "`metric_uid` → 400 on `metric_uid`; (4) the metric is for another context "
            "type → 400 on `metric_uid` naming both; (5) the metric is inactive → 400 on "
            "`metric_uid`; (6) the caller may read but not write the entity (viewer role, "
            "or an API key without `metrics:write`) → 403; (7) a value for this entity, "
            "metric, time unit and date exists → 409 `duplicate_value` with its `uid` in "
            "`data`. The database's unique constraint decides between concurrent creates: "
            "exactly one succeeds, the others get the 409. More than 6 decimals round "
            "half-even. Answers 201 with `Location: /api/metrics/values/{uid}` and "
            '`ETag: "1"`; the value\'s history records the create (source `api`).'
        ),
        request=MetricValueCreateSerializer,
        responses={
            201: MetricValueSerializer,
            403: error_response(
                403, "`permission_denied`: the caller may read this entity but not write it."
            ),
            404: error_response(
                404,
                "`not_found`: unknown `context_type` (the message names the allowed "
                "values), or the entity does not exist or is not visible.",
            ),
            409: error_response(
                409,
                "`duplicate_value`: the value already exists; `data.uid` is the existing "
                "value's uid.",
            ),
        },
    ),
)
class EntityMetricValueViewSet(_MetricValueViewMixin, EntityScopedMixin, viewsets.GenericViewSet):
    """Values of one entity: ``/api/metrics/values/{context_type}/{entity_uid}``."""

    serializer_class = MetricValueSerializer
    filter_backends = [SortFilter]
    sort_fields = {"metric_date": "metric_date", "value": "value", "created_at": "created_at"}
    default_sort = "-metric_date"
    sort_tiebreak = ("metric__uid", "uid")
    pagination_class = WindowCountPagination
    default_per_page = 100
    max_per_page = 1000
    # The create fetches the entity together with the caller's role and the definition.
    self_scoped_actions = frozenset({"create"})

    def get_queryset(self):
        return selectors.metric_values().for_entity(
            context_type=self.context_type, entity_uid=self.entity.uid
        )

    def list(self, request, *args, **kwargs):
        query = MetricValueListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        metric_ids = self._metric_ids(params.get("metric_uid"))
        as_of = params.get("as_of")
        queryset = self.get_queryset()
        as_of_kwargs = {}
        if as_of is not None:
            queryset = selectors.metric_values_as_of(as_of).for_entity(
                context_type=self.context_type, entity_uid=self.entity.uid
            )
            as_of_kwargs = {"as_of": as_of}
        if params["latest"]:
            queryset = queryset.latest_per_metric(
                context_type=self.context_type,
                entity_uid=self.entity.uid,
                time_unit=params["time_unit"],
                metric_ids=metric_ids,
                **as_of_kwargs,
            )
        else:
            start, end = self._date_range(params)
            queryset = (
                queryset.with_time_unit(params["time_unit"])
                .for_metrics(metric_ids)
                .in_range(start, end)
            )
        include_metadata = params["include_metadata"]
        columns = (*VALUE_ROW_COLUMNS, "metadata") if include_metadata else VALUE_ROW_COLUMNS
        queryset = queryset.annotate(**TIMESTAMP_TEXT_ANNOTATIONS).values(*columns)
        rows = self.paginate_queryset(self.filter_queryset(queryset))
        items = [value_row(row, include_metadata=include_metadata) for row in rows]
        return self.get_paginated_response(items)

    def _metric_ids(self, raw: str | None) -> list[int] | None:
        """``metric_uid=a,b`` → definition ids; unknown or wrong-context uids are a 400."""
        definitions = metric_definitions_param(raw, context_type=self.context_type)
        return None if definitions is None else [definition.pk for definition in definitions]

    def _date_range(self, params) -> tuple[date, date]:
        """Given dates, or the last 90 days up to today in the organization's timezone."""
        return date_range_param(
            params,
            self.entity,
            default_start=lambda *, end, today: today - timedelta(days=DEFAULT_LIST_DAYS),
        )

    def initialize_request(self, request, *args, **kwargs):
        request = super().initialize_request(request, *args, **kwargs)
        if self.action == "create":
            # The create's statement reads the token's user itself and requires it to
            # exist and be active: its JWT is verified without a query of its own.
            request.authenticators = (ApiKeyAuthentication(), TokenClaimsAuthentication())
        return request

    def create(self, request, *args, **kwargs):
        with request_change(request, ChangeSource.API):
            return self._create(request)

    def _create(self, request):
        # A valid body goes straight to the one statement that checks and inserts; an
        # invalid one, or a refusal, to the checks one by one (entity before body).
        shape_error = data = fields = None
        try:
            body = MetricValueCreateSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
        except APIException as exc:
            shape_error = exc
        if data is not None:
            with contextlib.suppress(DjangoValidationError):
                fields = services.metric_value_fields(
                    time_unit=data["time_unit"],
                    metric_date=data["metric_date"],
                    value=data["value"],
                    timezone=data.get("timezone"),
                    metadata=data.get("_metadata"),
                )
        instance = None
        if fields is not None:
            instance = metric_value_create_checked(
                user=request.user,
                context_type=self.context_type,
                entity_uid=self.entity_uid,
                metric_uid=data["metric_uid"],
                fields=fields,
            )
        if instance is None:
            instance = self._create_or_refuse(request, data, shape_error)
        record_ingested(1, source="api", outcome="created")
        location = reverse("metric-value-detail", kwargs={"value_uid": instance.uid})
        return Response(
            MetricValueSerializer(instance).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(location), **etag(instance.version)},
        )

    def _create_or_refuse(self, request, data, shape_error) -> MetricValue:
        """The checks of a create one by one, in the contract's order, each with its own
        answer: 401 (the token's user is gone or inactive), 404, 400, 403, 409. Creates the
        value when none refuses it (a conflicting value was deleted in between)."""
        user = request.user = load_user(request.user)
        metric_uid = data["metric_uid"] if data is not None else None
        scope = selectors.value_create_scope(
            context_type=self.context_type,
            entity_uid=self.entity_uid,
            user=user,
            metric_uid=metric_uid,
        )
        if scope is None:
            raise self.entity_not_found()
        self.entity = scope.entity
        if shape_error is not None:
            raise shape_error
        instance = services.metric_value_build(
            definition=scope.definition,
            metric_uid=metric_uid,
            entity=EntityRef.of(self.context_type, self.entity),
            time_unit=data["time_unit"],
            metric_date=data["metric_date"],
            value=data["value"],
            timezone=data.get("timezone"),
            metadata=data.get("_metadata"),
        )
        _check_write(user, self.entity, self.context_type, role=scope.role)
        return services.metric_value_save_new(instance)


@extend_schema_view(
    retrieve=extend_schema(
        summary="Get a metric value",
        parameters=[_VALUE_PARAM, MetricValueRetrieveQuerySerializer, etag_header(200)],
        description=(
            'One value, `_metadata` included, with `ETag: "<version>"`. With `as_of`, the '
            "value as it was then: 404 when it did not exist then (created later), present "
            "when it was deleted later."
        ),
        responses={200: MetricValueSerializer, 404: _NOT_FOUND_404},
    ),
    partial_update=extend_schema(
        summary="Update a metric value",
        parameters=[_VALUE_PARAM, IF_MATCH_PARAM, REASON_PARAM, etag_header(200)],
        description=(
            "Changes `value` (re-validated against the metric's rules), `timezone` and "
            "`_metadata` (replaced whole, never merged). The identifying fields "
            "(`metric_uid`, `context_type`, `entity_uid`, `time_unit`, `metric_date`) may "
            "be sent with their current value, which is ignored; a different value is a "
            "400 naming the field. Unknown fields are a 400. The write permission is "
            "checked before the body: a caller who may read but not write the value gets "
            "403 whatever it sends. An empty object, or one that repeats the stored "
            "fields, changes nothing, keeps `version` and answers 200. A change raises "
            "`version` by one and is kept in the value's history; the answer carries the "
            "new `ETag`. With `If-Match`, the version check and the write are atomic: of "
            "concurrent PATCHes naming one version exactly one succeeds."
        ),
        request=MetricValueUpdateSerializer,
        responses={
            200: MetricValueSerializer,
            403: error_response(403, "`permission_denied`: read-only access to this value."),
            404: _NOT_FOUND_404,
            412: _PRECONDITION_412,
        },
    ),
    destroy=extend_schema(
        summary="Delete a metric value",
        parameters=[_VALUE_PARAM, IF_MATCH_PARAM, REASON_PARAM],
        description=(
            "Removes the value; answers 200 with `data: {}`. Its history stays readable "
            "(a `delete` entry is the newest)."
        ),
        responses={
            200: OpenApiResponse(description="Deleted; `data` is `{}`."),
            403: error_response(403, "`permission_denied`: read-only access to this value."),
            404: _NOT_FOUND_404,
            412: _PRECONDITION_412,
        },
    ),
)
class MetricValueViewSet(_MetricValueViewMixin, viewsets.GenericViewSet):
    """One value by uid: ``/api/metrics/values/{value_uid}``."""

    serializer_class = MetricValueSerializer
    lookup_url_kwarg = "value_uid"

    def get_queryset(self):
        # Only for schema generation and the browsable machinery; lookups go through
        # ``selectors.metric_value_get_visible`` so visibility cannot be skipped.
        return selectors.metric_values().none()

    def get_object(self, *, for_write: bool = False) -> MetricValue:
        found = selectors.metric_value_get_visible(
            uid=self.kwargs[self.lookup_url_kwarg], user=self.request.user
        )
        if found is None:
            raise NotFound("No metric value with this uid was found.")
        instance, entity = found
        if for_write:
            _check_write(self.request.user, entity, instance.context_type)
        return instance

    def retrieve(self, request, *args, **kwargs):
        query = MetricValueRetrieveQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        as_of = query.validated_data.get("as_of")
        if as_of is None:
            instance = self.get_object()
        else:
            instance = selectors.metric_value_as_of_visible(
                uid=self.kwargs[self.lookup_url_kwarg], user=request.user, as_of=as_of
            )
            if instance is None:
                raise NotFound("No metric value with this uid existed at that instant.")
        return Response(MetricValueSerializer(instance).data, headers=etag(instance.version))

    def partial_update(self, request, *args, **kwargs):
        instance = self.get_object(for_write=True)
        expected = if_match(request)
        body = MetricValueUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        if "_metadata" in fields:
            fields["metadata"] = fields.pop("_metadata")
        with request_change(request, ChangeSource.API):
            instance = services.metric_value_update(instance=instance, if_match=expected, **fields)
        return Response(MetricValueSerializer(instance).data, headers=etag(instance.version))

    def destroy(self, request, *args, **kwargs):
        instance = self.get_object(for_write=True)
        expected = if_match(request)
        with request_change(request, ChangeSource.API):
            services.metric_value_delete(instance=instance, if_match=expected)
        return Response({})


@extend_schema(
    summary="History of a metric value",
    parameters=[_VALUE_PARAM],
    description=(
        "Every version of the value, newest first (`version` descending), whichever path "
        "made the change: the API, bulk, import, the admin, `revert_batch`, or SQL by hand "
        "(`system`). Each item is the state *after* the change (for `delete`, the state "
        "deleted) and who made it. Still answers after the value was deleted. 404 when no "
        "value with this uid ever existed or the caller may not read its entity. "
        "`per_page` 1–100 (default 25). History is never edited through the API."
    ),
    responses={200: MetricValueHistorySerializer(many=True), 404: _NOT_FOUND_404},
)
class MetricValueHistoryView(_MetricValueViewMixin, generics.GenericAPIView):
    """``/api/metrics/values/{value_uid}/history``: read-only."""

    serializer_class = MetricValueHistorySerializer
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        return MetricValueHistory.objects.none()

    def get(self, request, *args, **kwargs):
        versions = selectors.metric_value_history_visible(
            uid=self.kwargs["value_uid"], user=request.user
        )
        if versions is None:
            raise NotFound("No metric value with this uid was found.")
        page = self.paginate_queryset(versions)
        users = {
            user.uid: user
            for user in User.objects.filter(
                uid__in={row.recorded_by_uid for row in page if row.recorded_by_uid}
            )
        }
        serializer = MetricValueHistorySerializer(page, many=True, context={"users": users})
        return self.get_paginated_response(serializer.data)


# CSRF-exempt like the API views: otherwise a cookie-less POST (any API client) would get a
# 403 from the CSRF check instead of this 404. It changes nothing.
@csrf_exempt
def unknown_context(request, context_type: str, entity_uid: str) -> HttpResponse:
    """``/api/metrics/values/{x}/{y}`` that the converters rejected: a 404 before any
    authentication, naming the allowed context types when that is what was wrong."""
    if context_type not in ContextType.values:
        message = (
            f"Unknown context_type {context_type[:40]!r}; allowed: {', '.join(ContextType.values)}."
        )
    else:
        message = ENTITY_NOT_FOUND.format(context_type=context_type)
    return plain_error_response(HTTPStatus.NOT_FOUND, "not_found", message)
