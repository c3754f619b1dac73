from django.urls import re_path

from .views import MetricDefinitionViewSet

definition_list = MetricDefinitionViewSet.as_view({"get": "list", "post": "create"})
definition_detail = MetricDefinitionViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)

# Paths have no trailing slash, and one is accepted too (no redirect, even for POST).
urlpatterns = [
    re_path(r"^metrics/?$", definition_list, name="metric-definition-list"),
    re_path(r"^metrics/(?P<uid>[^/]+)/?$", definition_detail, name="metric-definition-detail"),
]
