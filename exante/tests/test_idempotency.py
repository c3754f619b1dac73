"""``Idempotency-Key``: a retried write runs once and is answered from the stored answer;
a reused key with another request, a key still running and a malformed key are refused
without running anything."""

from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from entities.models import ApiKey, Invitation, Membership, Organization
from exante.idempotency import store
from exante.idempotency.models import IdempotencyKey
from metrics.models import MetricDefinition, MetricValue

from . import test_hostile_bodies as hostile

#: One object of every kind a write path names (the fixture of the hostile-body corpus).
world = hostile.world

pytestmark = pytest.mark.django_db

JSON = "application/json"
VALUE = {"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1}


def values_path(organization) -> str:
    return f"/api/metrics/values/ORGANIZATION/{organization.uid}"


def send(client, method, path, body=None, *, key="key-1", **headers):
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.generic(
        method, path, b"" if body is None else _json(body), content_type=JSON, **headers
    )


def _json(body) -> bytes:
    import json

    return json.dumps(body).encode()


def assert_replayed(first, again):
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    for header in ("Location", "ETag"):
        assert again.get(header) == first.get(header)


# --- Replays -----------------------------------------------------------------------------------


def test_a_retried_create_is_the_first_answer_replayed_and_writes_once(
    editor_client, organization, total_ar
):
    first = send(editor_client, "POST", values_path(organization), VALUE)
    assert first.status_code == 201, first.content
    again = send(editor_client, "POST", values_path(organization), VALUE)
    assert_replayed(first, again)
    assert again["Location"].endswith(f"/api/metrics/values/{first.json()['data']['uid']}")
    assert MetricValue.objects.count() == 1
    row = IdempotencyKey.objects.get()
    assert (row.method, row.status_code, bytes(row.body)) == ("POST", 201, first.content)


def test_a_create_without_a_key_retried_is_a_409_as_before(editor_client, organization, total_ar):
    first = send(editor_client, "POST", values_path(organization), VALUE, key=None)
    assert first.status_code == 201
    again = send(editor_client, "POST", values_path(organization), VALUE, key=None)
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_value"
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("change", ["patch", "delete"])
def test_a_create_replayed_after_its_value_changed_is_still_the_201_with_its_uid(
    editor_client, organization, total_ar, change
):
    first = send(editor_client, "POST", values_path(organization), VALUE)
    uid = first.json()["data"]["uid"]
    if change == "patch":
        response = send(
            editor_client, "PATCH", f"/api/metrics/values/{uid}", {"value": 9}, key=None
        )
    else:
        response = send(editor_client, "DELETE", f"/api/metrics/values/{uid}", key=None)
    assert response.status_code == 200
    again = send(editor_client, "POST", values_path(organization), VALUE)
    assert_replayed(first, again)
    assert again.json()["data"]["uid"] == uid
    assert again.json()["data"]["value"] == 1


def test_a_refusal_is_stored_and_replayed_too(editor_client, organization, total_ar):
    body = {**VALUE, "value": "not a number"}
    first = send(editor_client, "POST", values_path(organization), body)
    assert first.status_code == 400
    assert_replayed(first, send(editor_client, "POST", values_path(organization), body))
    assert IdempotencyKey.objects.get().status_code == 400


def test_a_trailing_slash_is_the_same_request(editor_client, organization, total_ar):
    first = send(editor_client, "POST", values_path(organization), VALUE)
    assert_replayed(first, send(editor_client, "POST", values_path(organization) + "/", VALUE))


# --- Mismatch, in progress, malformed --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "query"),
    [
        ("POST", "{values}", {**VALUE, "value": 2}, ""),
        ("POST", "{values}", VALUE, "?x=1"),
        ("POST", "/api/organizations", {"name": "Other"}, ""),
    ],
    ids=["body", "query", "path"],
)
def test_a_key_reused_for_another_request_is_422_and_runs_nothing(
    editor_client, organization, total_ar, method, path, body, query
):
    first = send(editor_client, "POST", values_path(organization), VALUE)
    assert first.status_code == 201
    url = path.format(values=values_path(organization)) + query
    response = send(editor_client, method, url, body)
    assert response.status_code == 422
    envelope = response.json()
    assert (envelope["code"], envelope["status_code"]) == ("idempotency_key_mismatch", 422)
    assert MetricValue.objects.get().value == 1
    assert Organization.objects.count() == 1


def _stored_row(user, key: str, *, expires_at) -> IdempotencyKey:
    return IdempotencyKey.objects.create(
        user_uid=user.uid,
        key=key,
        method="POST",
        path="/",
        fingerprint="0" * 64,
        status_code=201,
        body=b"{}",
        created_at=expires_at - timedelta(hours=24),
        expires_at=expires_at,
    )


@pytest.fixture
def other_worker(postgres_only):
    """A second database connection, standing for another worker."""
    worker = connections.create_connection(DEFAULT_DB_ALIAS)
    yield worker
    worker.close()


@pytest.mark.postgres
def test_a_retry_while_the_first_still_runs_is_409_and_runs_once_its_worker_died(
    editor, editor_client, organization, total_ar, other_worker
):
    """Another worker holds the key (its transaction is open): the retry is told so at
    once and runs nothing. When that worker dies, the database rolls its transaction
    back and frees the key, and the next retry runs."""
    other_worker.set_autocommit(False)
    with other_worker.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [store.lock_id(editor.uid, "key-1")])
    response = send(editor_client, "POST", values_path(organization), VALUE)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_in_progress"
    assert response["Retry-After"] == "1"
    assert not MetricValue.objects.exists()
    assert not IdempotencyKey.objects.exists()
    other_worker.close()  # the worker dies mid-request
    retried = send(editor_client, "POST", values_path(organization), VALUE)
    assert retried.status_code == 201
    assert MetricValue.objects.count() == 1


@pytest.mark.postgres
def test_a_request_holding_a_key_may_idle_at_most_the_lock_time(editor, settings, postgres_only):
    settings.IDEMPOTENCY_LOCK_SECONDS = 7
    with transaction.atomic():
        store.claim(user_uid=editor.uid, key="k", method="POST", path="/", fingerprint="f")
        with connection.cursor() as cursor:
            cursor.execute("SHOW idle_in_transaction_session_timeout")
            assert cursor.fetchone()[0] == "7s"


@pytest.mark.parametrize(
    "key",
    ["", "k" * 256, "caf\xe9", "tab\there", "nul\x00", "del\x7f"],
    ids=["empty", "256-chars", "non-ascii", "tab", "nul", "del"],
)
def test_a_malformed_key_is_400_naming_the_header_and_runs_nothing(
    editor_client, organization, total_ar, key
):
    response = send(editor_client, "POST", values_path(organization), VALUE, key=key)
    assert response.status_code == 400
    envelope = response.json()
    assert envelope["code"] == "invalid_idempotency_key"
    assert list(envelope["errors"]) == ["Idempotency-Key"]
    assert not MetricValue.objects.exists()
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("key", ["k", "k" * 255, " ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"])
def test_keys_of_1_to_255_printable_ascii_characters_are_taken(
    editor_client, organization, total_ar, key
):
    response = send(editor_client, "POST", values_path(organization), VALUE, key=key)
    assert response.status_code == 201
    assert IdempotencyKey.objects.get().key == key


# --- What is not stored -----------------------------------------------------------------------


def test_an_unauthenticated_write_is_401_and_claims_nothing(organization, total_ar):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = send(client, "POST", values_path(organization), VALUE)
    assert response.status_code == 401
    assert not IdempotencyKey.objects.exists()


def test_a_401_from_the_view_is_not_stored(editor, editor_client, organization, total_ar):
    """The token is well signed but its user was deactivated: the key is claimed by the
    token's uid, the view refuses, and the claim is released."""
    editor.is_active = False
    editor.save()
    response = send(editor_client, "POST", values_path(organization), VALUE)
    assert response.status_code == 401
    assert not IdempotencyKey.objects.exists()


def test_a_429_is_not_stored(editor_client, organization, total_ar, settings):
    rates = dict(settings.REST_FRAMEWORK)
    rates["DEFAULT_THROTTLE_RATES"] = {"user": "1/min", "api_key": "", "auth": ""}
    settings.REST_FRAMEWORK = rates
    assert editor_client.get("/api/metrics").status_code == 200
    response = send(editor_client, "POST", values_path(organization), VALUE)
    assert response.status_code == 429
    assert not IdempotencyKey.objects.exists()
    assert not MetricValue.objects.exists()


@pytest.mark.parametrize(
    "failing",
    ["metrics.api.views.record_ingested", "exante.idempotency.store.complete"],
    ids=["in-the-view-after-the-write", "storing-the-answer"],
)
def test_a_failure_after_the_write_keeps_neither_the_write_nor_an_answer(
    editor_client, organization, total_ar, failing
):
    """The write and its stored answer commit together: a failure after the value was
    inserted (in the view, or storing the answer) keeps neither, and the key is free for
    the retry, which runs."""
    editor_client.raise_request_exception = False
    with mock.patch(failing, side_effect=RuntimeError("crash")):
        response = send(editor_client, "POST", values_path(organization), VALUE)
    assert response.status_code == 500
    assert not MetricValue.objects.exists()
    assert not IdempotencyKey.objects.exists()
    retried = send(editor_client, "POST", values_path(organization), VALUE)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert MetricValue.objects.count() == 1
    assert IdempotencyKey.objects.get().status_code == 201


def test_a_database_outage_while_claiming_is_503_and_runs_nothing(
    editor_client, organization, total_ar
):
    outage = OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
    with mock.patch("exante.idempotency.store.claim", side_effect=outage):
        response = send(editor_client, "POST", values_path(organization), VALUE)
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert not MetricValue.objects.exists()
    assert not IdempotencyKey.objects.exists()


# --- Whose key, for how long ----------------------------------------------------------------


def test_keys_are_per_user(editor_client, org_admin, organization, total_ar, client_for):
    """Another user's key of the same string is neither replayed nor a mismatch."""
    first = send(editor_client, "POST", values_path(organization), VALUE)
    body = {**VALUE, "metric_date": "2026-03-16"}
    other = send(client_for(org_admin), "POST", values_path(organization), body)
    assert (first.status_code, other.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in other
    assert MetricValue.objects.count() == 2
    assert IdempotencyKey.objects.filter(key="key-1").count() == 2


def test_an_api_key_acts_for_its_user(
    editor, editor_client, organization, total_ar, make_api_key, key_client
):
    _, raw = make_api_key(editor, organization, scopes=["metrics:read", "metrics:write"])
    keyed = key_client(raw)
    first = send(keyed, "POST", values_path(organization), VALUE)
    assert first.status_code == 201, first.content
    assert_replayed(first, send(keyed, "POST", values_path(organization), VALUE))
    # The same key string from the same user's JWT is the same key.
    assert_replayed(first, send(editor_client, "POST", values_path(organization), VALUE))
    assert MetricValue.objects.count() == 1
    assert IdempotencyKey.objects.get().user_uid == editor.uid


def test_an_expired_key_is_a_new_key(editor_client, organization, total_ar, settings):
    first = send(editor_client, "POST", values_path(organization), VALUE)
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    body = {**VALUE, "metric_date": "2026-03-16"}
    again = send(editor_client, "POST", values_path(organization), body)
    assert again.status_code == 201
    assert again.json()["data"]["uid"] != first.json()["data"]["uid"]
    assert MetricValue.objects.count() == 2
    row = IdempotencyKey.objects.get()
    assert row.expires_at > timezone.now() + timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS - 1)


def test_purge_deletes_expired_keys_in_batches_and_keeps_live_ones(editor, capsys):
    now = timezone.now()
    for index in range(5):
        _stored_row(editor, f"old-{index}", expires_at=now - timedelta(minutes=1))
    _stored_row(editor, "live", expires_at=now + timedelta(minutes=1))
    call_command("purge_idempotency_keys", "--batch-size", "2")
    assert "Deleted 5 expired idempotency key(s)." in capsys.readouterr().out
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["live"]


# --- Where it applies --------------------------------------------------------------------------


def test_auth_endpoints_ignore_the_header(editor):
    client = APIClient()
    body = {"email": editor.email, "password": "correct-horse-battery"}
    assert send(client, "POST", "/api/auth/token", body).status_code == 200
    assert send(client, "POST", "/api/auth/token", body).status_code == 200
    assert not IdempotencyKey.objects.exists()


def test_reads_ignore_the_header(editor_client):
    response = editor_client.get("/api/metrics", HTTP_IDEMPOTENCY_KEY="")
    assert response.status_code == 200
    assert not IdempotencyKey.objects.exists()


def test_without_the_header_a_write_costs_no_query_more(editor_client, organization, total_ar):
    with CaptureQueriesContext(connection) as queries:
        response = send(editor_client, "POST", values_path(organization), VALUE, key=None)
    assert response.status_code == 201
    assert len(queries) == 1


def test_a_keyed_create_costs_four_statements_more(
    editor_client, organization, total_ar, django_assert_num_queries
):
    """The transaction's BEGIN, the claim, the create's one statement, the answer and the
    COMMIT: the token is verified once, and no user is loaded."""
    with django_assert_num_queries(5):
        response = send(editor_client, "POST", values_path(organization), VALUE)
    assert response.status_code == 201
    assert IdempotencyKey.objects.get().status_code == 201


def test_a_keyed_write_verifies_its_token_once(editor_client, organization, total_ar):
    """The middleware names the caller from the token before the view; the view reuses
    that verification instead of checking the signature again."""
    verified = AccessToken.verify
    with mock.patch.object(AccessToken, "verify", autospec=True, side_effect=verified) as verify:
        response = send(editor_client, "POST", values_path(organization), VALUE)
    assert response.status_code == 201
    assert verify.call_count == 1


# --- Every endpoint family -------------------------------------------------------------------


@pytest.fixture
def families(world, organization, staff, make_user, total_ar):
    """(method, path, body) of one write of each family, and a check of what it wrote."""
    newcomer = make_user("newcomer@acme.test")
    value_uid = world["value_uid"]
    return {
        "value-create": (
            "POST",
            values_path(organization),
            {**VALUE, "metric_date": "2026-04-01"},
            lambda: MetricValue.objects.count(),
        ),
        "value-patch": (
            "PATCH",
            f"/api/metrics/values/{value_uid}",
            {"value": 8},
            lambda: MetricValue.objects.get(uid=value_uid).value,
        ),
        "value-delete": (
            "DELETE",
            f"/api/metrics/values/{value_uid}",
            None,
            lambda: MetricValue.objects.count(),
        ),
        "bulk": (
            "POST",
            "/api/metrics/values/bulk",
            {
                "items": [
                    {
                        "context_type": "ORGANIZATION",
                        "entity_uid": str(organization.uid),
                        "metric_uid": "total_ar",
                        "metric_date": f"2026-05-{day:02d}",
                        "value": day,
                    }
                    for day in range(1, 4)
                ]
            },
            lambda: MetricValue.objects.count(),
        ),
        "definition-create": (
            "POST",
            "/api/metrics",
            {"uid": "dso_x", "name": "DSO X", "value_type": "days"},
            lambda: MetricDefinition.objects.count(),
        ),
        "definition-patch": (
            "PATCH",
            "/api/metrics/total_ar",
            {"name": "Renamed"},
            lambda: MetricDefinition.objects.get(uid="total_ar").name,
        ),
        "organization-create": (
            "POST",
            "/api/organizations",
            {"name": "New Org"},
            lambda: Organization.objects.count(),
        ),
        "member-add": (
            "POST",
            f"/api/organizations/{organization.uid}/members",
            {"user_uid": str(newcomer.uid), "role": "viewer"},
            lambda: Membership.objects.count(),
        ),
        "member-remove": (
            "DELETE",
            f"/api/organizations/{organization.uid}/members/{world['user_uid']}",
            None,
            lambda: Membership.objects.count(),
        ),
        "invitation-create": (
            "POST",
            f"/api/organizations/{organization.uid}/invitations",
            {"email": "invitee@elsewhere.test", "role": "viewer"},
            lambda: Invitation.objects.count(),
        ),
        "api-key-create": (
            "POST",
            "/api/api-keys",
            {"name": "k", "organization_uid": str(organization.uid), "scopes": ["metrics:read"]},
            lambda: ApiKey.objects.count(),
        ),
    }


FAMILIES = [
    "value-create",
    "value-patch",
    "value-delete",
    "bulk",
    "definition-create",
    "definition-patch",
    "organization-create",
    "member-add",
    "member-remove",
    "invitation-create",
    "api-key-create",
]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_runs_once_replays_and_refuses_a_mismatch(staff_client, families, family):
    method, path, body, written = families[family]
    first = send(staff_client, method, path, body)
    # Creates answer 201; a bulk call (a report) and every PATCH and DELETE, 200.
    created = method == "POST" and family != "bulk"
    assert first.status_code == (201 if created else 200), first.content
    after_first = written()
    again = send(staff_client, method, path, body)
    if family == "api-key-create":
        # The one field withheld from replays: the key's secret.
        expected = first.json()
        expected["data"]["key"] = None
        assert (again.status_code, again.json()) == (201, expected)
    else:
        assert_replayed(first, again)
    assert written() == after_first
    other = send(staff_client, method, path + "?other=1", body)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_mismatch"
    assert written() == after_first


def _schema_writes() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("post", "patch", "delete") and not path.startswith("/api/auth/")
    }


#: Deletes of the schema → how to fill their path (POST and PATCH come from the corpus).
DELETE_PATHS = {
    ("DELETE", "/api/api-keys/{uid}"): "/api/api-keys/{key_uid}",
    ("DELETE", "/api/metrics/{uid}"): "/api/metrics/{metric_uid}",
    ("DELETE", "/api/metrics/values/{value_uid}"): "/api/metrics/values/{value_uid}",
    ("DELETE", "/api/organizations/{organization_uid}/invitations/{invitation_uid}"): (
        "/api/organizations/{organization_uid}/invitations/{invitation_uid}"
    ),
    ("DELETE", "/api/organizations/{organization_uid}/members/{user_uid}"): (
        "/api/organizations/{organization_uid}/members/{user_uid}"
    ),
}
KEYED_PATHS = {**{k: v for k, v in hostile.PATHS.items() if not k[1].startswith("/api/auth/")}}
KEYED_PATHS.update(DELETE_PATHS)
PATH_TEMPLATES = KEYED_PATHS


def test_every_write_operation_of_the_schema_is_checked_below():
    assert _schema_writes() == set(KEYED_PATHS)


@pytest.mark.parametrize(
    ("method", "template"), sorted(KEYED_PATHS), ids=[f"{m} {p}" for m, p in sorted(KEYED_PATHS)]
)
def test_a_malformed_key_is_refused_alike_on_every_write(
    world, staff, staff_client, method, template, make_api_key
):
    api_key, _ = make_api_key(staff, Organization.objects.get(uid=world["organization_uid"]))
    path = PATH_TEMPLATES[(method, template)].format(key_uid=api_key.uid, **world)
    response = send(staff_client, method, path, {}, key="\u00e9")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_idempotency_key"
    assert not IdempotencyKey.objects.exists()


def test_the_schema_documents_the_header_on_every_write_and_only_there():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            headers = {
                parameter["name"]
                for parameter in operation.get("parameters", [])
                if parameter["in"] == "header"
            }
            keyed = method in ("post", "patch", "delete") and not path.startswith("/api/auth/")
            assert ("Idempotency-Key" in headers) == keyed, (method, path)
            if keyed:
                assert "422" in operation["responses"], (method, path)
                assert "idempotency_in_progress" in operation["responses"]["409"]["description"]


# --- Admin -------------------------------------------------------------------------------------


def test_admin_lists_keys_read_only(
    superuser_client, editor, editor_client, organization, total_ar
):
    send(editor_client, "POST", values_path(organization), VALUE, key="support-me")
    listing = superuser_client.get("/admin/idempotency/idempotencykey/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "support-me" in page and editor.email in page
    assert superuser_client.get("/admin/idempotency/idempotencykey/add/").status_code == 403
    row = IdempotencyKey.objects.get()
    change = superuser_client.post(f"/admin/idempotency/idempotencykey/{row.pk}/change/", {})
    assert change.status_code == 403


@pytest.mark.django_db
def test_a_replayed_api_key_create_withholds_the_secret(editor, organization, client_for):
    client = client_for(editor)
    body = {"name": "ci", "organization_uid": str(organization.uid)}
    first = send(client, "POST", "/api/api-keys", body)
    assert first.status_code == 201
    assert first.json()["data"]["key"].startswith("ex_live_")
    again = send(client, "POST", "/api/api-keys", body)
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["data"]["key"] is None
    assert again.json()["data"]["uid"] == first.json()["data"]["uid"]
    assert ApiKey.objects.count() == 1
    [stored] = IdempotencyKey.objects.all()
    assert first.json()["data"]["key"].encode() not in bytes(stored.body)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/metrics", "/api/parties", "/api/users"])
def test_a_method_the_view_does_not_take_is_its_405_whatever_the_key(staff_client, path):
    response = send(staff_client, "PATCH", path, {"name": "x"}, key="\x01not printable")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert IdempotencyKey.objects.count() == 0
