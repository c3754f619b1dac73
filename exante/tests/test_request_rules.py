"""What a request may be, beyond its body's bytes: paths, URL length, numeric text, the
named field of every refusal, body limits from settings, and token verification."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework_simplejwt.tokens import RefreshToken

from metrics.models import MetricValue

pytestmark = pytest.mark.django_db

JSON = "application/json"


def _create(client, organization, **body):
    fields = {"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1, **body}
    return client.post(
        f"/api/metrics/values/ORGANIZATION/{organization.uid}", fields, format="json"
    )


# --- Paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/metrics/a%00b",
        "/api/metrics/" + "m" * 256,
        "/api/metrics/values/a%00b",
        "/api/organizations/%00",
        "/api/api-keys/" + "k" * 300,
    ],
    ids=["nul-metric", "long-metric", "nul-value", "nul-organization", "long-key"],
)
def test_a_path_segment_that_cannot_be_an_identifier_is_404_before_any_query(
    staff_client, method, path
):
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.generic(method, path, b"{}", content_type=JSON)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert len(queries) == 0


def test_a_255_character_metric_uid_is_an_ordinary_lookup(staff_client):
    response = staff_client.get("/api/metrics/" + "m" * 255)
    assert response.status_code == 404
    assert response.json()["message"] == "No MetricDefinition matches the given query."


def test_an_overlong_url_is_414_in_the_envelope(staff_client, settings):
    response = staff_client.get("/api/metrics", {"search": "x" * settings.API_MAX_URL_LENGTH})
    assert response.status_code == 414
    body = response.json()
    assert (body["status"], body["code"]) == ("error", "uri_too_long")


def test_a_url_at_the_limit_is_served(staff_client, settings):
    query = "x" * (settings.API_MAX_URL_LENGTH - len("/api/metrics") - len("search="))
    response = staff_client.get("/api/metrics", {"search": query})
    assert response.status_code == 200


# --- Value text -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["١٢٣", "１２３", "1e5", " 12 ", "12 ", "+-1", ".5", "5."])
def test_a_value_string_outside_the_numeric_pattern_is_a_400_on_value(
    editor_client, organization, total_ar, text
):
    response = _create(editor_client, organization, value=text)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["value"]
    assert MetricValue.objects.count() == 0


@pytest.mark.parametrize(
    ("text", "stored"), [("123", 123), ("-150", -150), ("0012.000", 12), ("+7", 7)]
)
def test_a_value_string_inside_the_pattern_is_stored(
    editor_client, organization, total_ar, text, stored
):
    response = _create(editor_client, organization, value=text)
    assert response.status_code == 201
    assert response.json()["data"]["value"] == stored


def test_the_schema_publishes_the_numeric_pattern_the_service_applies(staff_client):
    from metrics.constants import NUMERIC_STRING_PATTERN

    schema = staff_client.get("/api/schema", {"format": "json"}).json()
    create = schema["components"]["schemas"]["MetricValueCreateRequest"]["properties"]["value"]
    assert {"type": "string", "pattern": NUMERIC_STRING_PATTERN} in create["oneOf"]


# --- JSON that is valid but not allowed, named by field ------------------------------------------


def test_duplicate_keys_are_a_400_naming_the_key(editor_client, organization, total_ar):
    raw = b'{"metric_uid": "a", "metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1}'
    response = editor_client.generic(
        "POST", f"/api/metrics/values/ORGANIZATION/{organization.uid}", raw, content_type=JSON
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["metric_uid"]
    assert MetricValue.objects.count() == 0


def test_metadata_nested_1000_deep_is_a_400_on_metadata(editor_client, organization, total_ar):
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    raw = (
        '{"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1, "_metadata": '
        + deep
        + "}"
    ).encode()
    response = editor_client.generic(
        "POST", f"/api/metrics/values/ORGANIZATION/{organization.uid}", raw, content_type=JSON
    )
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["_metadata"]
    assert "not valid JSON" not in body["message"]


def test_metadata_33_levels_deep_is_a_400_and_32_is_stored(editor_client, organization, total_ar):
    def metadata(levels: int) -> str:  # the body is level 1, _metadata's object level 2
        return '{"a":' * (levels - 1) + "1" + "}" * (levels - 1)

    url = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
    template = '{"metric_uid": "total_ar", "metric_date": "%s", "value": 1, "_metadata": %s}'
    deep = editor_client.generic(
        "POST", url, (template % ("2026-03-15", metadata(33))).encode(), content_type=JSON
    )
    assert deep.status_code == 400
    assert list(deep.json()["errors"]) == ["_metadata"]
    fits = editor_client.generic(
        "POST", url, (template % ("2026-03-16", metadata(32))).encode(), content_type=JSON
    )
    assert fits.status_code == 201


def test_a_5000_digit_integer_is_a_400_on_value(editor_client, organization, total_ar):
    raw = (
        '{"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": ' + "9" * 5000 + "}"
    ).encode()
    response = editor_client.generic(
        "POST", f"/api/metrics/values/ORGANIZATION/{organization.uid}", raw, content_type=JSON
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["value"]


def test_bulk_item_value_1e400_names_the_items_value(editor_client, organization, total_ar):
    item = (
        f'{{"context_type": "ORGANIZATION", "entity_uid": "{organization.uid}", '
        '"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1e400}'
    )
    raw = ('{"on_conflict": "skip", "items": [' + item + "]}").encode()
    response = editor_client.generic("POST", "/api/metrics/values/bulk", raw, content_type=JSON)
    assert response.status_code == 200, response.content
    [result] = response.json()["data"]["results"]
    assert result["status"] == "error"
    assert list(result["errors"]) == ["value"]


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_a_utf8_charset_is_accepted(editor_client, organization, total_ar, charset):
    raw = json.dumps({"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1})
    response = editor_client.generic(
        "POST",
        f"/api/metrics/values/ORGANIZATION/{organization.uid}",
        raw.encode(),
        content_type=f"application/json; charset={charset}",
    )
    assert response.status_code == 201


# --- Limits -----------------------------------------------------------------------------------


def test_the_value_endpoints_take_the_body_limit_from_settings(
    editor_client, organization, total_ar, settings
):
    settings.API_MAX_BODY_BYTES = 100_000
    metadata = {"note": "x" * 15_000}
    response = _create(editor_client, organization, _metadata=metadata)
    assert response.status_code == 201
    settings.API_MAX_BODY_BYTES = 1_000
    response = _create(editor_client, organization, metric_date="2026-03-16", _metadata=metadata)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


# --- Token verification -------------------------------------------------------------------------


def test_verify_answers_401_for_a_deactivated_users_token(anon_client, editor):
    token = str(RefreshToken.for_user(editor).access_token)
    assert anon_client.post("/api/auth/token/verify", {"token": token}).status_code == 200
    editor.is_active = False
    editor.save(update_fields=["is_active"])
    response = anon_client.post("/api/auth/token/verify", {"token": token})
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_verify_answers_401_for_a_deleted_users_token(anon_client, make_user):
    gone = make_user("gone@example.test")
    token = str(RefreshToken.for_user(gone).access_token)
    gone.delete()
    response = anon_client.post("/api/auth/token/verify", {"token": token})
    assert response.status_code == 401


# --- Actions that take no body ------------------------------------------------------------------


def test_an_action_without_a_body_refuses_fields_and_takes_an_empty_object(
    organization, make_user, client_for
):
    from datetime import timedelta

    from django.utils import timezone

    from entities.models import Invitation

    invitee = make_user("invitee@example.test")
    invitation = Invitation.objects.create(
        organization=organization,
        email=invitee.email,
        role="viewer",
        expires_at=timezone.now() + timedelta(days=1),
    )
    client = client_for(invitee)
    path = f"/api/user/invitations/{invitation.uid}/accept"
    refused = client.post(path, {"role": "admin"}, format="json")
    assert refused.status_code == 400
    assert list(refused.json()["errors"]) == ["role"]
    invitation.refresh_from_db()
    assert invitation.status == "pending"
    accepted = client.post(path, {}, format="json")
    assert accepted.status_code == 201
    assert accepted.json()["data"]["role"] == "viewer"


def test_a_refusal_inside_a_bulk_item_names_its_path(editor_client, organization):
    items = [{"metric_uid": "ok"}, {"metric_uid": "ok"}, {"note": ["fine", "bad\ud800"]}]
    raw = json.dumps({"on_conflict": "skip", "items": items}).encode()
    response = editor_client.generic(
        "POST", "/api/metrics/values/bulk", raw, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "items": [
            "items.2.note.1 holds a lone surrogate (\\ud800–\\udfff), which is not a character."
        ]
    }
