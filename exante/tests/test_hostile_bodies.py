"""A corpus of hostile request bodies, sent to every write endpoint the schema publishes.

Each body breaks one rule of the strict body reader; each endpoint must give the same
answer (status, code, the field named) and write nothing. The endpoint list is read from
the OpenAPI schema, so a new write endpoint is in the corpus's reach the day it exists,
and the test fails until it has a concrete path below.
"""

import io
import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from entities.models import Invitation, Membership
from metrics.models import MetricValue

pytestmark = pytest.mark.django_db

JSON = "application/json"
NFE = "non_field_errors"
DEEP = 2000  # past the recursion limit of the JSON parser itself


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


# (id, raw body, content type, status, code, field named in ``errors`` or None)
CORPUS = [
    ("invalid-utf8-in-string", b'{"name": "caf\xe9"}', JSON, 400, "validation_error", "name"),
    ("truncated-utf8", b'{"name": "\xe2\x82"}', JSON, 400, "validation_error", "name"),
    ("invalid-utf8-outside-string", b'{"name": 1\xff}', JSON, 400, "validation_error", NFE),
    ("lone-surrogate", b'{"name": "\\ud800"}', JSON, 400, "validation_error", "name"),
    ("low-surrogate", b'{"name": "x\\udfffy"}', JSON, 400, "validation_error", "name"),
    ("surrogate-in-list", b'{"name": ["ok", "\\udc80"]}', JSON, 400, "validation_error", "name"),
    ("nul-escape", b'{"name": "a\\u0000b"}', JSON, 400, "validation_error", "name"),
    ("nul-deep", b'{"name": {"a": [{"b": "\\u0000"}]}}', JSON, 400, "validation_error", "name"),
    ("nul-in-nested-key", b'{"name": {"a\\u0000": 1}}', JSON, 400, "validation_error", "name"),
    ("surrogate-in-top-key", b'{"\\ud800": 1}', JSON, 400, "validation_error", NFE),
    ("duplicate-key", b'{"name": "a", "name": "b"}', JSON, 400, "validation_error", "name"),
    ("duplicate-nested-key", b'{"name": {"k": 1, "k": 2}}', JSON, 400, "validation_error", "name"),
    (
        "nesting-33",
        ('{"name": ' + _nested(32) + "}").encode(),
        JSON,
        400,
        "validation_error",
        "name",
    ),
    (
        "nesting-past-the-parser",
        ('{"name": ' + _nested(DEEP) + "}").encode(),
        JSON,
        400,
        "validation_error",
        "name",
    ),
    ("nesting-top-level-array", _nested(DEEP).encode(), JSON, 400, "validation_error", NFE),
    ("integer-41-digits", b'{"name": ' + b"1" * 41 + b"}", JSON, 400, "validation_error", "name"),
    (
        "integer-5000-digits",
        b'{"name": -' + b"9" * 5000 + b"}",
        JSON,
        400,
        "validation_error",
        "name",
    ),
    ("nan-literal", b'{"name": NaN}', JSON, 400, "validation_error", NFE),
    ("not-json", b"{name: 1}", JSON, 400, "validation_error", NFE),
    (
        "charset-latin1",
        b'{"name": "x"}',
        JSON + "; charset=latin-1",
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "charset-utf16",
        b'{"name": "x"}',
        JSON + "; charset=utf-16",
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "form-encoded",
        b"name=x",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        None,
    ),
]

#: Small limits so the oversized case costs little; the rule is the same at any size.
SMALL_LIMIT = 8192
OVERSIZED = (
    "oversized",
    b'{"name": "' + b"x" * SMALL_LIMIT + b'"}',
    JSON,
    413,
    "payload_too_large",
    None,
)


@pytest.fixture
def world(staff, organization, party, editor, total_ar):
    """One object of every kind a write path names; the uids fill the path templates."""
    from metrics.models import MetricValue as Value

    value = Value.objects.create(
        metric=total_ar,
        context_type="ORGANIZATION",
        entity_uid=organization.uid,
        metric_date="2026-03-01",
        value=5,
    )
    invitation = Invitation.objects.create(
        organization=organization,
        email=staff.email,
        role="viewer",
        expires_at=timezone.now() + timedelta(days=1),
    )
    return {
        "invitation_uid": invitation.uid,
        "context_type": "ORGANIZATION",
        "entity_uid": organization.uid,
        "organization_uid": organization.uid,
        "value_uid": value.uid,
        "user_uid": editor.uid,
        "metric_uid": total_ar.uid,
        "party_uid": party.uid,
    }


#: Write operation → how to fill its path. Every POST and PATCH of the schema must be here.
PATHS = {
    ("POST", "/api/api-keys"): "/api/api-keys",
    ("POST", "/api/auth/logout"): "/api/auth/logout",
    ("POST", "/api/auth/token"): "/api/auth/token",
    ("POST", "/api/auth/token/refresh"): "/api/auth/token/refresh",
    ("POST", "/api/auth/token/verify"): "/api/auth/token/verify",
    ("POST", "/api/metrics"): "/api/metrics",
    ("PATCH", "/api/metrics/{uid}"): "/api/metrics/{metric_uid}",
    ("POST", "/api/metrics/values/{context_type}/{entity_uid}"): (
        "/api/metrics/values/{context_type}/{entity_uid}"
    ),
    ("PATCH", "/api/metrics/values/{value_uid}"): "/api/metrics/values/{value_uid}",
    ("POST", "/api/metrics/values/bulk"): "/api/metrics/values/bulk",
    ("POST", "/api/organizations"): "/api/organizations",
    ("PATCH", "/api/organizations/{uid}"): "/api/organizations/{organization_uid}",
    ("POST", "/api/organizations/{organization_uid}/members"): (
        "/api/organizations/{organization_uid}/members"
    ),
    ("PATCH", "/api/organizations/{organization_uid}/members/{user_uid}"): (
        "/api/organizations/{organization_uid}/members/{user_uid}"
    ),
    ("POST", "/api/parties"): "/api/parties",
    ("PATCH", "/api/parties/{uid}"): "/api/parties/{party_uid}",
    ("POST", "/api/users"): "/api/users",
    ("POST", "/api/organizations/{organization_uid}/invitations"): (
        "/api/organizations/{organization_uid}/invitations"
    ),
    ("POST", "/api/user/invitations/{invitation_uid}/accept"): (
        "/api/user/invitations/{invitation_uid}/accept"
    ),
    ("POST", "/api/user/invitations/{invitation_uid}/decline"): (
        "/api/user/invitations/{invitation_uid}/decline"
    ),
}


def _schema_write_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("post", "patch", "put")
    }


def test_every_write_operation_of_the_schema_is_in_the_corpus_run():
    assert _schema_write_operations() == set(PATHS)


def _snapshot() -> dict[str, int]:
    """Rows per table of the project's own apps (and the token blacklist)."""
    counts = {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.app_label in ("entities", "metrics", "token_blacklist")
    }
    counts["values"] = list(MetricValue.objects.values_list("uid", "value", "metadata"))
    counts["roles"] = list(Membership.objects.values_list("user_id", "role"))
    counts["invitations"] = list(Invitation.objects.values_list("uid", "status"))
    return counts


def _send(client: APIClient, method: str, path: str, raw: bytes, content_type: str):
    return client.generic(method, path, raw, content_type=content_type)


OPERATIONS = sorted(PATHS)


@pytest.mark.parametrize(
    ("method", "template"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS]
)
@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code", "field"),
    [case[1:] for case in [*CORPUS, OVERSIZED]],
    ids=[case[0] for case in [*CORPUS, OVERSIZED]],
)
def test_hostile_body_is_refused_alike_everywhere_and_writes_nothing(
    world, staff_client, settings, method, template, raw, content_type, status, code, field
):
    settings.API_MAX_BODY_BYTES = SMALL_LIMIT
    settings.API_MAX_BULK_BODY_BYTES = SMALL_LIMIT
    path = PATHS[(method, template)].format(**world)
    before = _snapshot()
    response = _send(staff_client, method, path, raw, content_type)
    assert response.status_code == status, response.content[:300]
    envelope = response.json()
    assert envelope["status"] == "error"
    assert envelope["status_code"] == status
    assert envelope["code"] == code
    if field is not None:
        assert list(envelope["errors"]) == [field], envelope
    assert _snapshot() == before


def test_a_hostile_body_is_refused_before_the_entity_is_looked_at_only_when_visible(
    editor_client, other_organization, total_ar
):
    """For an entity the caller cannot see, any body answers the 404 (the body is read
    after the entity is resolved), so a hostile body discloses nothing either."""
    response = editor_client.generic(
        "POST",
        f"/api/metrics/values/ORGANIZATION/{other_organization.uid}",
        b'{"metric_uid": "\\ud800"}',
        content_type=JSON,
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- The enum fields that answered 500 on a lone surrogate ------------------------------------


@pytest.mark.parametrize(
    ("path_key", "body", "field"),
    [
        (
            "create",
            {
                "metric_uid": "total_ar",
                "metric_date": "2026-03-02",
                "value": 1,
                "time_unit": "\ud800",
            },
            "time_unit",
        ),
        ("definitions", {"uid": "m_x", "name": "M", "value_type": "\ud800"}, "value_type"),
        ("definitions", {"uid": "m_x", "name": "M", "context_type": "\ud800"}, "context_type"),
        ("bulk", {"on_conflict": "\ud800", "items": [{}]}, "on_conflict"),
        (
            "bulk",
            {
                "dry_run": True,
                "items": [
                    {
                        "context_type": "ORGANIZATION",
                        "entity_uid": "{organization_uid}",
                        "metric_uid": "\ud800",
                        "metric_date": "2026-03-02",
                        "value": 1,
                    }
                ],
            },
            "items",
        ),
        ("members", {"user_uid": "{user_uid}", "role": "\ud800"}, "role"),
        (
            "api-keys",
            {"name": "k", "organization_uid": "{organization_uid}", "scopes": ["\ud800"]},
            "scopes",
        ),
    ],
)
def test_lone_surrogate_in_an_enum_field_is_a_400_naming_it(
    world, staff_client, path_key, body, field
):
    paths = {
        "create": "/api/metrics/values/ORGANIZATION/{organization_uid}",
        "definitions": "/api/metrics",
        "bulk": "/api/metrics/values/bulk",
        "members": "/api/organizations/{organization_uid}/members",
        "api-keys": "/api/api-keys",
    }
    # json.dumps writes the lone surrogate as the escape "\ud800", as any client would.
    raw = json.dumps(body).replace("{organization_uid}", str(world["organization_uid"]))
    raw = raw.replace("{user_uid}", str(world["user_uid"]))
    before = _snapshot()
    response = staff_client.generic(
        "POST", paths[path_key].format(**world), raw.encode(), content_type=JSON
    )
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]
    assert "surrogate" in response.json()["message"]
    assert _snapshot() == before


# --- Chunked bodies -----------------------------------------------------------------------------


def _chunked_request(client: APIClient, method: str, path: str, body: bytes, *, terminated: bool):
    """What a server hands Django for a chunked body: no Content-Length, the de-chunked
    bytes on ``wsgi.input``, and ``wsgi.input_terminated`` when it de-chunked them."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": JSON,
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
    }
    if terminated:
        environ["wsgi.input_terminated"] = True
    return client.request(**environ)


def test_chunked_patch_is_read_whole(world, editor_client):
    path = f"/api/metrics/values/{world['value_uid']}"
    response = _chunked_request(editor_client, "PATCH", path, b'{"value": 7}', terminated=True)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["value"] == 7
    assert MetricValue.objects.get(uid=world["value_uid"]).value == 7


def test_chunked_body_a_server_did_not_dechunk_is_411(world, editor_client):
    path = f"/api/metrics/values/{world['value_uid']}"
    response = _chunked_request(editor_client, "PATCH", path, b'{"value": 7}', terminated=False)
    assert response.status_code == 411
    assert response.json()["code"] == "length_required"
    assert MetricValue.objects.get(uid=world["value_uid"]).value == 5


def test_chunked_body_over_the_largest_limit_is_413(world, editor_client, settings):
    settings.API_MAX_BULK_BODY_BYTES = 100
    body = b'{"value": 7, "_metadata": {"x": "' + b"y" * 200 + b'"}}'
    path = f"/api/metrics/values/{world['value_uid']}"
    response = _chunked_request(editor_client, "PATCH", path, body, terminated=True)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert MetricValue.objects.get(uid=world["value_uid"]).value == 5
