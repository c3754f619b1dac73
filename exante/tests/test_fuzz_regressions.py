"""Inputs generated from the schema that once got a wrong answer, one test per case."""

import json

import pytest
from django.test import Client

from exante.api.pagination import MAX_PAGE


@pytest.mark.django_db
class TestPagination:
    def test_page_beyond_64_bits_is_400_not_500(self, staff_client):
        response = staff_client.get("/api/metrics", {"page": "34057853588838445056"})
        assert response.status_code == 400
        assert "page" in response.json()["errors"]

    def test_largest_page_is_an_empty_page(self, staff_client):
        response = staff_client.get("/api/metrics", {"page": MAX_PAGE})
        assert response.status_code == 200
        assert response.json()["data"]["items"] == []
        assert response.json()["data"]["_meta"]["page"] == MAX_PAGE


@pytest.mark.django_db
def test_empty_sort_is_400_naming_the_allowed_fields(staff_client):
    response = staff_client.get("/api/metrics?sort=")
    assert response.status_code == 400
    assert "allowed" in response.json()["errors"]["sort"][0]


@pytest.mark.django_db
def test_csrf_rejection_outside_the_admin_is_a_json_envelope():
    # Every plain view outside the admin is CSRF-exempt (the probes, the unknown
    # context 404), so ask the configured failure view directly for a non-admin path: a
    # future plain view must still answer JSON; the admin keeps Django's HTML pages.
    from django.middleware.csrf import _get_failure_view
    from django.test import RequestFactory

    response = _get_failure_view()(RequestFactory().post("/api/anything"), reason="no cookie")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
    assert json.loads(response.content)["code"] == "permission_denied"


def test_admin_csrf_rejection_is_django_html_page():
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x"})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
class TestEmptyTypedFilters:
    """``?organization_uid=`` answered the unfiltered list (django-filter drops empty
    values); the schema says uuid. Found on /api/parties, /api/users and /api/api-keys."""

    @pytest.mark.parametrize(
        ("url", "param"),
        [
            ("/api/parties", "organization_uid"),
            ("/api/users", "organization_uid"),
            ("/api/api-keys", "organization_uid"),
            ("/api/metrics", "value_type"),
            ("/api/metrics", "is_active"),
        ],
    )
    def test_empty_typed_filter_is_400_naming_it(self, staff_client, url, param):
        response = staff_client.get(f"{url}?{param}=")
        assert response.status_code == 400, response.content
        assert param in response.json()["errors"]

    def test_empty_free_text_search_is_still_accepted(self, staff_client):
        assert staff_client.get("/api/parties?search=").status_code == 200

    def test_strict_boolean_filter_is_documented_as_boolean(self):
        from drf_spectacular.generators import SchemaGenerator

        schema = SchemaGenerator().get_schema(request=None, public=True)
        (param,) = [
            p
            for p in schema["paths"]["/api/api-keys"]["get"]["parameters"]
            if p["name"] == "is_revoked"
        ]
        assert param["schema"]["type"] == "boolean"


def test_request_bodies_document_that_unknown_fields_are_rejected():
    """Generated bodies with extra keys were "valid" per the schema yet 400 by contract
    (unknown fields are a 400), so most fuzzed creates never reached the business rules."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    # Bodies parsed by a StrictFieldsMixin serializer; documentation-only serializers
    # (parsed by hand elsewhere) are not covered by the mixin and say nothing.
    for name in (
        "TokenObtainRequest",
        "MetricDefinitionCreateRequest",
        "PatchedMetricDefinitionUpdateRequest",
        "MetricValueCreateRequest",
        "PatchedMetricValueUpdateRequest",
    ):
        assert components[name].get("additionalProperties") is False, name
    # Response components are unaffected: clients must tolerate new fields.
    assert "additionalProperties" not in components["MetricValue"]


def test_value_list_items_do_not_require_the_metadata_key():
    """Lists leave ``_metadata`` out unless ``include_metadata=true``; the schema listed it
    as required, so every list response contradicted it."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    value = schema["components"]["schemas"]["MetricValue"]
    assert "_metadata" in value["properties"]
    assert "_metadata" not in value.get("required", [])
    assert "value" in value["required"]


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "patch", "delete", "get"])
def test_unknown_context_type_is_404_for_every_method_without_csrf_cookie(staff, method):
    """A real API client sends no CSRF cookie; the plain Django view that
    answers malformed value paths made a POST a 403 (CSRF) instead of the 404."""
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(staff).access_token}")
    response = getattr(client, method)(
        "/api/metrics/values/NOPE/abc", {"metric_uid": "x"}, format="json"
    )
    assert response.status_code == 404, response.content
    assert "ORGANIZATION" in response.json()["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_probes_answer_other_methods_with_the_405_envelope(path, method):
    """Every 4xx is the envelope. These plain views answered a cookie-less POST
    with a CSRF 403 and other methods with Django's empty HTML 405."""
    response = getattr(Client(enforce_csrf_checks=True), method)(path)
    assert response.status_code == 405, response.content
    assert response["Allow"] == "GET, HEAD"
    body = response.json()
    assert (body["status"], body["code"], body["status_code"]) == (
        "error",
        "method_not_allowed",
        405,
    )
