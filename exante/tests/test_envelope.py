"""Every status the service can answer carries the envelope."""

import pytest
from django.db import OperationalError
from django.test import override_settings

from metrics.api.views import MetricDefinitionViewSet


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "error"
    assert body["status_code"] == status
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) == {"status", "status_code", "message", "code", "errors", "data"}
    assert "Traceback" not in response.content.decode()
    assert response["X-Request-ID"]
    return body


@pytest.mark.django_db
class TestErrorEnvelope:
    def test_unknown_route_is_404_envelope(self, staff_client):
        assert_error(staff_client.get("/api/no-such-thing"), 404, "not_found")

    def test_unknown_route_outside_api_is_404_envelope(self, anon_client):
        assert_error(anon_client.get("/nowhere"), 404, "not_found")

    def test_wrong_method_is_405(self, staff_client):
        assert_error(staff_client.put("/api/metrics", {}, format="json"), 405, "method_not_allowed")

    def test_wrong_content_type_is_415(self, staff_client):
        response = staff_client.post("/api/metrics", "uid=x", content_type="text/plain")
        assert_error(response, 415, "unsupported_media_type")

    def test_form_encoded_body_is_415(self, staff_client):
        response = staff_client.post("/api/metrics", {"uid": "abc"}, format="multipart")
        assert_error(response, 415, "unsupported_media_type")

    def test_malformed_json_is_400(self, staff_client):
        response = staff_client.post("/api/metrics", "{bad", content_type="application/json")
        body = assert_error(response, 400, "validation_error")
        assert "non_field_errors" in body["errors"]

    @pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
    def test_non_standard_json_numbers_are_400(self, staff_client, literal):
        raw = f'{{"uid": "abc", "name": {literal}}}'
        response = staff_client.post("/api/metrics", raw, content_type="application/json")
        assert_error(response, 400, "validation_error")

    def test_missing_credentials_is_401_with_challenge(self, anon_client):
        body = assert_error(anon_client.get("/api/metrics"), 401, "not_authenticated")
        assert body["errors"] is None

    def test_bad_token_is_401_authentication_failed(self, anon_client):
        anon_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
        response = anon_client.get("/api/metrics")
        assert_error(response, 401, "authentication_failed")
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_missing_credentials_challenge_header(self, anon_client):
        assert anon_client.get("/api/metrics")["WWW-Authenticate"].startswith("Bearer")

    def test_non_staff_write_is_403(self, viewer_client):
        response = viewer_client.post("/api/metrics", {"uid": "abc", "name": "A"}, format="json")
        assert_error(response, 403, "permission_denied")

    @override_settings(API_MAX_BODY_BYTES=100)
    def test_oversized_body_is_413(self, staff_client):
        response = staff_client.post(
            "/api/metrics", {"uid": "abc", "name": "x" * 500}, format="json"
        )
        assert_error(response, 413, "payload_too_large")

    def test_unexpected_exception_is_500_without_trace(self, staff_client, monkeypatch):
        def explode(self, request, *args, **kwargs):
            raise RuntimeError("secret internals")

        monkeypatch.setattr(MetricDefinitionViewSet, "list", explode)
        response = staff_client.get("/api/metrics")
        body = assert_error(response, 500, "server_error")
        assert "secret internals" not in response.content.decode()
        assert body["data"] is None

    def test_database_outage_is_503_with_retry_after(self, staff_client, monkeypatch):
        def outage(self, request, *args, **kwargs):
            raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

        monkeypatch.setattr(MetricDefinitionViewSet, "list", outage)
        response = staff_client.get("/api/metrics")
        assert_error(response, 503, "service_unavailable")
        assert int(response["Retry-After"]) > 0

    def test_other_database_errors_are_500_not_503(self, staff_client, monkeypatch):
        def bad_sql(self, request, *args, **kwargs):
            raise OperationalError("no such column: nope")

        monkeypatch.setattr(MetricDefinitionViewSet, "list", bad_sql)
        assert_error(staff_client.get("/api/metrics"), 500, "server_error")


@pytest.mark.django_db
class TestSuccessEnvelope:
    def test_success_envelope_shape(self, staff_client):
        response = staff_client.get("/api/metrics")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "success"
        assert body["status_code"] == 200
        assert body["message"] == "Success"
        assert set(body["data"]) == {"items", "_meta"}

    def test_create_status_code_matches_http_status(self, staff_client):
        response = staff_client.post("/api/metrics", {"uid": "dso", "name": "DSO"}, format="json")
        assert response.status_code == 201
        assert response.json()["status_code"] == 201


@pytest.mark.django_db
class TestRequestId:
    def test_generated_when_absent(self, anon_client):
        first = anon_client.get("/healthz")["X-Request-ID"]
        second = anon_client.get("/healthz")["X-Request-ID"]
        assert first and second and first != second

    def test_echoed_when_present(self, anon_client):
        response = anon_client.get("/healthz", HTTP_X_REQUEST_ID="req-123.abc")
        assert response["X-Request-ID"] == "req-123.abc"

    def test_unsafe_value_is_replaced(self, anon_client):
        response = anon_client.get("/healthz", HTTP_X_REQUEST_ID="evil\nheader: 1")
        assert response["X-Request-ID"] != "evil\nheader: 1"
        assert "\n" not in response["X-Request-ID"]

    def test_present_on_errors(self, anon_client):
        response = anon_client.get("/api/metrics", HTTP_X_REQUEST_ID="abc-1")
        assert response.status_code == 401
        assert response["X-Request-ID"] == "abc-1"


@pytest.mark.django_db
class TestAdminKeepsHtmlErrors:
    """Analysts use the admin in a browser: its errors are Django's pages, not JSON."""

    def test_admin_404_is_html(self, client, staff):
        staff.is_superuser = True
        staff.save()
        client.force_login(staff)
        response = client.get("/admin/no-such-app/")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")

    def test_admin_403_is_html(self, client, make_user):
        client.force_login(make_user("plain-staff@exante.test", is_staff=True))
        response = client.get("/admin/entities/user/")
        assert response.status_code == 403
        assert response["Content-Type"].startswith("text/html")
