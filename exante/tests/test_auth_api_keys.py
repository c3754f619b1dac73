"""API-key authentication: ``Authorization: Bearer ex_live_…`` acts for its
user inside one organization, within its scopes, and stops working the moment it is
revoked, expires, or its user leaves the organization."""

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from entities.models import API_KEY_PREFIX, ApiKey, Membership, Role, hash_api_key
from metrics.models import MetricValue

pytestmark = pytest.mark.django_db


def real_queries(context: CaptureQueriesContext) -> list[str]:
    """Executed SQL without the savepoint bookkeeping of the test's own transaction."""
    return [
        query["sql"]
        for query in context.captured_queries
        if not query["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO"))
    ]


@pytest.fixture
def editor_key(editor, organization, make_api_key):
    return make_api_key(editor, organization)


class TestKeyFormatAndStorage:
    def test_key_has_prefix_and_at_least_32_random_url_safe_chars(self, editor_key):
        _, raw = editor_key
        assert raw.startswith(API_KEY_PREFIX)
        body = raw[len(API_KEY_PREFIX) :]
        assert len(body) >= 32
        assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

    def test_only_a_keyed_hash_is_stored(self, editor_key):
        api_key, raw = editor_key
        row = ApiKey.objects.filter(pk=api_key.pk).values().get()
        assert raw not in str(row)
        assert row["key_hash"] == hash_api_key(raw)
        assert len(row["key_hash"]) == 64

    def test_hash_depends_on_the_server_secret(self, editor_key, settings):
        _, raw = editor_key
        before = hash_api_key(raw)
        settings.API_KEY_SECRET = "another-secret"
        assert hash_api_key(raw) != before

    def test_two_keys_differ(self, editor, organization, make_api_key):
        (_, first), (_, second) = (make_api_key(editor, organization) for _ in range(2))
        assert first != second


class TestAuthentication:
    def test_valid_key_authenticates_as_its_user(self, editor, editor_key, key_client):
        _, raw = editor_key
        response = key_client(raw).get("/api/user")
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        assert data["uid"] == str(editor.uid)
        assert data["authentication"]["method"] == "api_key"

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),  # wrong secret part
            lambda raw: API_KEY_PREFIX + "x" * 43,  # unknown lookup
            lambda raw: API_KEY_PREFIX + "short",  # malformed
            lambda raw: API_KEY_PREFIX + "é" * 40,  # not url-safe
        ],
        ids=["wrong-secret", "unknown", "too-short", "non-ascii"],
    )
    def test_bad_key_is_401_with_bearer_challenge(self, editor_key, key_client, mutate):
        _, raw = editor_key
        bad = mutate(raw)
        response = key_client(bad).get("/api/user")
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == "authentication_failed"
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert bad not in response.content.decode("utf-8", "replace")

    def test_revoked_key_fails_on_the_next_request(
        self, editor, editor_key, key_client, client_for
    ):
        api_key, raw = editor_key
        client = key_client(raw)
        assert client.get("/api/user").status_code == 200
        revoke = client_for(editor).delete(f"/api/api-keys/{api_key.uid}")
        assert revoke.status_code == 200
        response = client.get("/api/user")
        assert response.status_code == 401
        assert response.json()["message"] == "The API key has been revoked."

    def test_expired_key_is_401(self, editor, organization, make_api_key, key_client):
        api_key, raw = make_api_key(editor, organization, expires_in_days=1)
        assert key_client(raw).get("/api/user").status_code == 200
        ApiKey.objects.filter(pk=api_key.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        response = key_client(raw).get("/api/user")
        assert response.status_code == 401
        assert response.json()["message"] == "The API key has expired."

    def test_key_of_inactive_user_is_401(self, editor, editor_key, key_client):
        editor.is_active = False
        editor.save()
        assert key_client(editor_key[1]).get("/api/user").status_code == 401

    def test_key_of_a_removed_member_is_401(self, editor, editor_key, key_client):
        Membership.objects.filter(user=editor).delete()
        response = key_client(editor_key[1]).get("/api/user")
        assert response.status_code == 401
        assert "no longer a member" in response.json()["message"]

    def test_key_is_not_mistaken_for_a_jwt(self, key_client):
        response = key_client(API_KEY_PREFIX + "A" * 43).get("/api/metrics")
        assert response.status_code == 401
        assert "token" not in response.json()["message"].lower()

    def test_keys_never_appear_in_logs(self, editor_key, key_client, caplog):
        _, raw = editor_key
        wrong = raw[:-2] + "zz"
        with caplog.at_level(logging.DEBUG):
            key_client(raw).get("/api/user")
            key_client(wrong).get("/api/user")
            key_client(raw).post("/api/metrics", {"uid": 1})
        text = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
        assert raw not in text and wrong not in text
        assert raw[len(API_KEY_PREFIX) :][:20] not in text


class TestLastUsed:
    def test_last_used_is_recorded_on_first_use(self, editor_key, key_client):
        api_key, raw = editor_key
        assert api_key.last_used_at is None
        key_client(raw).get("/api/user")
        api_key.refresh_from_db()
        assert api_key.last_used_at is not None

    def test_last_used_is_written_at_most_once_a_minute(self, editor_key, key_client):
        _, raw = editor_key
        client = key_client(raw)
        client.get("/api/user")
        with CaptureQueriesContext(connection) as captured:
            client.get("/api/user")
        assert not [q for q in real_queries(captured) if q.upper().startswith("UPDATE")]

    def test_last_used_is_refreshed_after_a_minute(self, editor_key, key_client):
        api_key, raw = editor_key
        old = timezone.now() - timedelta(minutes=2)
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=old)
        key_client(raw).get("/api/user")
        api_key.refresh_from_db()
        assert api_key.last_used_at > old + timedelta(minutes=1)

    def test_update_is_conditional_so_concurrent_workers_write_once(self, editor_key):
        from entities.services import api_key_touch

        api_key, _ = editor_key
        now = timezone.now()
        stale = ApiKey.objects.get(pk=api_key.pk)  # as loaded by a second worker
        api_key_touch(api_key=api_key, now=now)
        api_key_touch(api_key=stale, now=now + timedelta(seconds=1))
        api_key.refresh_from_db()
        assert api_key.last_used_at == now


class TestScopes:
    def test_missing_scope_is_403_naming_it(self, editor, organization, make_api_key, key_client):
        _, raw = make_api_key(editor, organization, ["entities:read"])
        response = key_client(raw).get("/api/metrics")
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert "metrics:read" in response.json()["message"]

    def test_read_scope_does_not_allow_writes(
        self, editor, organization, total_ar, make_api_key, key_client
    ):
        _, raw = make_api_key(editor, organization, ["metrics:read"])
        client = key_client(raw)
        url = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
        assert client.get(url).status_code == 200
        body = {"metric_uid": "total_ar", "metric_date": "2026-01-01", "value": 1}
        response = client.post(url, body)
        # 403 at step 6 of the create order (after 404 and 400), like a viewer's.
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert not MetricValue.objects.exists()

    def test_write_scope_writes_values(
        self, editor, organization, total_ar, make_api_key, key_client
    ):
        _, raw = make_api_key(editor, organization, ["metrics:write"])
        url = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
        body = {"metric_uid": "total_ar", "metric_date": "2026-01-01", "value": 1}
        assert key_client(raw).post(url, body).status_code == 201

    def test_key_cannot_reach_another_organization_of_its_user(
        self, editor, organization, other_organization, total_ar, make_api_key, key_client
    ):
        Membership.objects.create(user=editor, organization=other_organization, role=Role.EDITOR)
        _, raw = make_api_key(editor, organization)
        url = f"/api/metrics/values/ORGANIZATION/{other_organization.uid}"
        body = {"metric_uid": "total_ar", "metric_date": "2026-01-01", "value": 1}
        assert key_client(raw).post(url, body).status_code == 404
        assert key_client(raw).get(f"/api/organizations/{other_organization.uid}").status_code == (
            404
        )

    def test_definition_writes_need_metrics_admin(
        self, staff, editor, organization, make_api_key, key_client
    ):
        _, editor_raw = make_api_key(editor, organization)
        _, staff_raw = make_api_key(staff, organization, ["metrics:admin"])
        body = {"uid": "new_metric", "name": "New"}
        assert key_client(editor_raw).post("/api/metrics", body).status_code == 403
        assert key_client(staff_raw).post("/api/metrics", body).status_code == 201

    def test_keys_cannot_manage_keys(self, editor_key, organization, key_client):
        _, raw = editor_key
        client = key_client(raw)
        body = {"name": "more", "organization_uid": str(organization.uid)}
        assert client.post("/api/api-keys", body).status_code == 403
        assert client.get("/api/api-keys").status_code == 403

    def test_demotion_narrows_existing_key_at_once(
        self, editor, organization, total_ar, make_api_key, key_client
    ):
        _, raw = make_api_key(editor, organization)
        Membership.objects.filter(user=editor).update(role=Role.VIEWER)
        url = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
        body = {"metric_uid": "total_ar", "metric_date": "2026-01-01", "value": 1}
        response = key_client(raw).post(url, body)
        assert response.status_code == 403
        assert key_client(raw).get(url).status_code == 200
        scopes = key_client(raw).get("/api/user").json()["data"]["authentication"]["scopes"]
        assert scopes == ["entities:read", "metrics:read"]


class TestQueryCounts:
    @pytest.mark.parametrize("context_type", ["ORGANIZATION", "PARTY", "USER"])
    def test_value_create_with_a_key_stays_within_five_queries(
        self, editor, organization, party, make_definition, make_api_key, key_client, context_type
    ):
        definition = make_definition("some_metric", context_type=context_type)
        entity = {"ORGANIZATION": organization, "PARTY": party, "USER": editor}[context_type]
        api_key, raw = make_api_key(editor, organization)
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
        url = f"/api/metrics/values/{context_type}/{entity.uid}"
        body = {"metric_uid": definition.uid, "metric_date": "2026-03-15", "value": 3}
        with CaptureQueriesContext(connection) as captured:
            response = key_client(raw).post(url, body)
        assert response.status_code == 201, response.content
        queries = real_queries(captured)
        # key + user + role, entity (visibility), definition, INSERT
        assert len(queries) <= 4, queries

    def test_first_use_in_a_minute_adds_one_conditional_update(
        self, editor, organization, make_definition, make_api_key, key_client
    ):
        make_definition("some_metric")
        _, raw = make_api_key(editor, organization)
        url = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
        body = {"metric_uid": "some_metric", "metric_date": "2026-03-15", "value": 3}
        with CaptureQueriesContext(connection) as captured:
            assert key_client(raw).post(url, body).status_code == 201
        queries = real_queries(captured)
        assert len(queries) <= 5, queries
        assert sum(q.upper().startswith("UPDATE") for q in queries) == 1

    def test_authentication_is_one_query(self, editor_key, key_client):
        api_key, raw = editor_key
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
        with CaptureQueriesContext(connection) as captured:
            assert key_client(raw).get("/api/metrics").status_code == 200
        auth = [q for q in real_queries(captured) if "entities_apikey" in q]
        assert len(auth) == 1, auth


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


class TestSchema:
    def test_both_schemes_are_documented(self, schema):
        schemes = schema["components"]["securitySchemes"]
        assert schemes["bearerAuth"]["bearerFormat"] == "JWT"
        assert schemes["apiKeyAuth"]["scheme"] == "bearer"
        assert "ex_live_" in schemes["apiKeyAuth"]["description"]

    def test_operations_say_which_scope_a_key_needs(self, schema):
        values = schema["paths"]["/api/metrics/values/{context_type}/{entity_uid}"]
        assert "`metrics:write`" in values["post"]["description"]
        assert "`metrics:read`" in values["get"]["description"]
        assert "`metrics:admin`" in schema["paths"]["/api/metrics"]["post"]["description"]
        assert {"apiKeyAuth": []} in values["post"]["security"]

    def test_operations_refusing_keys_document_the_jwt_scheme_only(self, schema):
        for path, method in [("/api/api-keys", "post"), ("/api/users", "post")]:
            operation = schema["paths"][path][method]
            assert operation["security"] == [{"bearerAuth": []}], (method, path)
            assert "API keys are not accepted" in operation["description"]

    def test_rate_limited_public_endpoints_document_429(self, schema):
        assert "429" in schema["paths"]["/api/auth/token"]["post"]["responses"]
