from django.urls import path, re_path

from exante.api.converters import register as register_converters

from .bulk import MetricValueBulkView
from .coverage import EntityCoverageView, OrganizationFreshnessView
from .series import EntitySeriesView
from .views import (
    EntityMetricValueViewSet,
    MetricDefinitionViewSet,
    MetricValueHistoryView,
    MetricValueViewSet,
    unknown_context,
)

register_converters()

definition_list = MetricDefinitionViewSet.as_view({"get": "list", "post": "create"})
definition_detail = MetricDefinitionViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)
entity_values = EntityMetricValueViewSet.as_view({"get": "list", "post": "create"})
value_detail = MetricValueViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)


def with_optional_slash(route: str, view, name: str) -> list:
    """``path()`` patterns (which apply converters) for the route with and without a
    trailing slash: both are accepted, with no redirect."""
    return [path(route, view, name=name), path(f"{route}/", view)]


# Paths have no trailing slash, and one is accepted too (no redirect, even for POST).
# The value routes come first and only match their converters, so a metric uid (which
# may never be `values` or `bulk`) still reaches the definition routes, and
# `metrics/values/bulk` stays free for the bulk endpoint.
urlpatterns = [
    # Before any `metrics/values/<...>` route that could take `bulk` for a parameter.
    re_path(r"^metrics/values/bulk/?$", MetricValueBulkView.as_view(), name="metric-value-bulk"),
    *with_optional_slash(
        "metrics/values/<context_type:context_type>/<anyuuid:entity_uid>",
        entity_values,
        "metric-value-entity",
    ),
    *with_optional_slash("metrics/values/<anyuuid:value_uid>", value_detail, "metric-value-detail"),
    *with_optional_slash(
        "metrics/values/<anyuuid:value_uid>/history",
        MetricValueHistoryView.as_view(),
        "metric-value-history",
    ),
    # Anything else of the entity-scoped shape: a 404 that names the allowed context types
    # (or, for a valid one, the same 404 as an unknown entity), before any view code runs.
    re_path(
        r"^metrics/values/(?P<context_type>[^/]+)/(?P<entity_uid>[^/]+)/?$",
        unknown_context,
        name="metric-value-unknown-context",
    ),
    *with_optional_slash(
        "metrics/series/<context_type:context_type>/<anyuuid:entity_uid>",
        EntitySeriesView.as_view(),
        "metric-series-entity",
    ),
    re_path(
        r"^metrics/series/(?P<context_type>[^/]+)/(?P<entity_uid>[^/]+)/?$",
        unknown_context,
        name="metric-series-unknown-context",
    ),
    *with_optional_slash(
        "metrics/coverage/<context_type:context_type>/<anyuuid:entity_uid>",
        EntityCoverageView.as_view(),
        "metric-coverage-entity",
    ),
    re_path(
        r"^metrics/coverage/(?P<context_type>[^/]+)/(?P<entity_uid>[^/]+)/?$",
        unknown_context,
        name="metric-coverage-unknown-context",
    ),
    *with_optional_slash(
        "organizations/<anyuuid:uid>/freshness",
        OrganizationFreshnessView.as_view(),
        "organization-freshness",
    ),
    re_path(r"^metrics/?$", definition_list, name="metric-definition-list"),
    re_path(r"^metrics/(?P<uid>[^/]+)/?$", definition_detail, name="metric-definition-detail"),
]
