"""The outsider matrix: every endpoint × every kind of caller × every context type.

For each DRF endpoint of the URL conf and each caller below, the request must answer the
documented status, that status must be documented for the operation in the OpenAPI schema,
and the body must not contain any uid, name or email the caller may not see (nor count
rows it may not see). Callers:

- ``anonymous``; ``expired_jwt``; ``blacklisted_refresh`` (a logged-out refresh token sent
  as a bearer); ``revoked_key``; ``expired_key``; ``key_without_scope`` (a key lacking the
  scope the endpoint needs): all refused before any data is touched;
- ``viewer`` of Acme (reads its data, writes nothing); ``outsider`` (an *editor* of Globex:
  must learn nothing about Acme); ``staff`` (everything); ``admin_key`` (a key of an Acme
  admin with every scope it can hold: acts like that admin, inside Acme only).

The requests target Acme's data: the organization, a party and a user (the editor), one per
context type. The matrix is keyed by (method, path) and ``test_every_endpoint_is_in_the_
matrix`` enumerates the URL conf: a new endpoint fails the suite until it has an entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from conftest import PASSWORD
from entities.models import ApiKey, Invitation, Membership, Organization, Party, Role, User
from entities.services import api_key_create, api_key_revoke, invitation_create
from metrics.models import MetricDefinition, MetricValue

CONTEXT_TYPES = ("ORGANIZATION", "PARTY", "USER")

#: Callers refused at authentication: every protected endpoint answers them 401.
UNAUTHENTICATED = ("anonymous", "expired_jwt", "blacklisted_refresh", "revoked_key", "expired_key")
PRINCIPALS = (*UNAUTHENTICATED, "key_without_scope", "viewer", "outsider", "staff", "admin_key")


# --- The world every request runs against ------------------------------------------------------


@dataclass
class World:
    acme: Organization
    globex: Organization
    acme_party: Party
    globex_party: Party
    viewer: User
    editor: User
    org_admin: User
    outsider: User
    staff: User
    loner: User
    definitions: dict[str, MetricDefinition]
    spare_definition: MetricDefinition
    acme_values: dict[str, MetricValue]
    globex_values: dict[str, MetricValue]
    editor_key: ApiKey
    invitation: Invitation
    raw: dict[str, str] = field(default_factory=dict)

    def entity(self, context_type: str):
        """The Acme entity each context type targets."""
        return {"ORGANIZATION": self.acme, "PARTY": self.acme_party, "USER": self.editor}[
            context_type
        ]

    def acme_secrets(self) -> set[str]:
        """What a caller outside Acme must never read."""
        users = (self.viewer, self.editor, self.org_admin)
        return {
            str(self.acme.uid),
            self.acme.name,
            str(self.acme_party.uid),
            self.acme_party.name,
            *(str(user.uid) for user in users),
            *(user.email for user in users),
            *(str(value.uid) for value in self.acme_values.values()),
            str(self.editor_key.uid),
            str(self.invitation.uid),
        }

    def globex_secrets(self) -> set[str]:
        """What a caller inside Acme only must never read."""
        return {
            str(self.globex.uid),
            self.globex.name,
            str(self.globex_party.uid),
            self.globex_party.name,
            str(self.outsider.uid),
            self.outsider.email,
            *(str(value.uid) for value in self.globex_values.values()),
        }


def _value(definition, context_type, entity_uid) -> MetricValue:
    return MetricValue.objects.create(
        metric=definition,
        context_type=context_type,
        entity_uid=entity_uid,
        metric_date=date.today() - timedelta(days=1),
        value=42,
    )


@pytest.fixture
def world(db) -> World:
    acme = Organization.objects.create(name="Acme Corp")
    globex = Organization.objects.create(name="Globex Secret Co")
    acme_party = Party.objects.create(organization=acme, name="Initech Party")
    globex_party = Party.objects.create(organization=globex, name="Hooli Hidden Party")

    def user(email, organization=None, role=Role.VIEWER, **extra):
        created = User.objects.create_user(email, PASSWORD, **extra)
        if organization is not None:
            Membership.objects.create(user=created, organization=organization, role=role)
        return created

    viewer = user("viewer@acme.test", acme, Role.VIEWER)
    editor = user("editor@acme.test", acme, Role.EDITOR)
    org_admin = user("admin@acme.test", acme, Role.ADMIN)
    outsider = user("outsider@globex.test", globex, Role.EDITOR)
    staff = user("staff@exante.test", is_staff=True)
    loner = user("loner@nowhere.test")
    definitions = {
        context_type: MetricDefinition.objects.create(
            uid=f"{context_type.lower()}_metric", name=f"{context_type} metric", context_type=ct
        )
        for context_type, ct in ((c, c) for c in CONTEXT_TYPES)
    }
    spare = MetricDefinition.objects.create(uid="spare_metric", name="Spare")
    acme_values = {
        "ORGANIZATION": _value(definitions["ORGANIZATION"], "ORGANIZATION", acme.uid),
        "PARTY": _value(definitions["PARTY"], "PARTY", acme_party.uid),
        "USER": _value(definitions["USER"], "USER", editor.uid),
    }
    globex_values = {
        "ORGANIZATION": _value(definitions["ORGANIZATION"], "ORGANIZATION", globex.uid),
        "PARTY": _value(definitions["PARTY"], "PARTY", globex_party.uid),
        "USER": _value(definitions["USER"], "USER", outsider.uid),
    }
    editor_key, _ = api_key_create(user=editor, organization=acme, name="editor's key")
    # Addressed to the loner: none of the callers may answer it.
    invitation = invitation_create(
        organization=acme, email=loner.email, role=Role.VIEWER, invited_by=org_admin
    )
    return World(
        acme=acme,
        globex=globex,
        acme_party=acme_party,
        globex_party=globex_party,
        viewer=viewer,
        editor=editor,
        org_admin=org_admin,
        outsider=outsider,
        staff=staff,
        loner=loner,
        definitions=definitions,
        spare_definition=spare,
        acme_values=acme_values,
        globex_values=globex_values,
        editor_key=editor_key,
        invitation=invitation,
    )


# --- Callers ------------------------------------------------------------------------------------


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _key(world: World, scopes=None, *, expired=False, revoked=False) -> str:
    api_key, raw = api_key_create(
        user=world.org_admin, organization=world.acme, name="matrix", scopes=scopes
    )
    if revoked:
        api_key_revoke(api_key=api_key)
    if expired:
        ApiKey.objects.filter(pk=api_key.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    return raw


def client_for(principal: str, world: World, endpoint: Endpoint) -> APIClient:
    if principal == "anonymous":
        return APIClient()
    if principal == "expired_jwt":
        token = AccessToken.for_user(world.viewer)
        token.set_exp(lifetime=-timedelta(seconds=1))
        return _bearer(str(token))
    if principal == "blacklisted_refresh":
        refresh = RefreshToken.for_user(world.viewer)
        refresh.blacklist()
        return _bearer(str(refresh))
    if principal == "revoked_key":
        return _bearer(_key(world, revoked=True))
    if principal == "expired_key":
        return _bearer(_key(world, expired=True))
    if principal == "key_without_scope":
        return _bearer(_key(world, endpoint.other_scopes))
    if principal == "admin_key":
        return _bearer(_key(world))
    user = {"viewer": world.viewer, "outsider": world.outsider, "staff": world.staff}[principal]
    return _bearer(str(RefreshToken.for_user(user).access_token))


def secrets_for(principal: str, world: World) -> set[str]:
    if principal == "staff":
        return set()
    if principal in ("viewer", "admin_key"):
        return world.globex_secrets()
    if principal == "outsider":
        return world.acme_secrets()
    return world.acme_secrets() | world.globex_secrets()


# --- The matrix ---------------------------------------------------------------------------------

Build = Callable[[World, str], tuple[str, dict | None]]

METRIC_SCOPES = ["metrics:read", "metrics:write"]
ENTITY_SCOPES = ["entities:read", "entities:write"]


@dataclass
class Endpoint:
    """How to call one operation, and what each caller gets.

    ``expect`` lists the callers that get through authentication; the refused ones are
    derived (401, and 403 for ``key_without_scope`` on protected endpoints).
    """

    build: Build
    expect: dict[str, int]
    contextual: bool = False  # parametrized over the three context types
    public: bool = False  # AllowAny: credentials are ignored
    other_scopes: list[str] = field(default_factory=lambda: list(ENTITY_SCOPES))

    def status_for(self, principal: str) -> int:
        if self.public:
            return self.expect["*"]
        if principal in UNAUTHENTICATED:
            return 401
        if principal == "key_without_scope":
            return 403
        return self.expect[principal]


def reads(*, outsider: int = 404, admin_key: int = 200) -> dict[str, int]:
    return {"viewer": 200, "outsider": outsider, "staff": 200, "admin_key": admin_key}


def writes(ok: int, *, viewer=403, outsider=404, admin_key=None) -> dict[str, int]:
    return {
        "viewer": viewer,
        "outsider": outsider,
        "staff": ok,
        "admin_key": ok if admin_key is None else admin_key,
    }


def metrics(build, expect, **kwargs) -> Endpoint:
    return Endpoint(build, expect, other_scopes=list(ENTITY_SCOPES), **kwargs)


def entities(build, expect, **kwargs) -> Endpoint:
    return Endpoint(build, expect, other_scopes=list(METRIC_SCOPES), **kwargs)


def _value_body(world: World, ct: str) -> dict:
    return {
        "metric_uid": world.definitions[ct].uid,
        "metric_date": "2026-02-03",
        "value": 7,
    }


def _fresh_refresh(world: World) -> str:
    return str(RefreshToken.for_user(world.viewer))


MATRIX: dict[tuple[str, str], Endpoint] = {
    # Public: the Authorization header, good or bad, is ignored.
    ("POST", "/api/auth/token"): Endpoint(
        lambda w, ct: ("/api/auth/token", {"email": w.viewer.email, "password": PASSWORD}),
        {"*": 200},
        public=True,
    ),
    ("POST", "/api/auth/token/refresh"): Endpoint(
        lambda w, ct: ("/api/auth/token/refresh", {"refresh": _fresh_refresh(w)}),
        {"*": 200},
        public=True,
    ),
    ("POST", "/api/auth/token/verify"): Endpoint(
        lambda w, ct: (
            "/api/auth/token/verify",
            {"token": str(RefreshToken.for_user(w.viewer).access_token)},
        ),
        {"*": 200},
        public=True,
    ),
    ("POST", "/api/auth/logout"): Endpoint(
        lambda w, ct: ("/api/auth/logout", {"refresh": _fresh_refresh(w)}),
        {"*": 200},
        public=True,
    ),
    ("GET", "/api/schema"): Endpoint(lambda w, ct: ("/api/schema", None), {"*": 200}, public=True),
    ("GET", "/api/docs"): Endpoint(lambda w, ct: ("/api/docs", None), {"*": 200}, public=True),
    ("GET", "/api/redoc"): Endpoint(lambda w, ct: ("/api/redoc", None), {"*": 200}, public=True),
    # Metric definitions: a global catalogue; writes need staff or metrics:admin.
    ("GET", "/api/metrics"): metrics(lambda w, ct: ("/api/metrics", None), reads(outsider=200)),
    ("POST", "/api/metrics"): metrics(
        lambda w, ct: ("/api/metrics", {"uid": "brand_new", "name": "Brand new"}),
        writes(201, outsider=403, admin_key=403),
    ),
    ("GET", "/api/metrics/{uid}"): metrics(
        lambda w, ct: (f"/api/metrics/{w.definitions[ct].uid}", None),
        reads(outsider=200),
        contextual=True,
    ),
    ("PATCH", "/api/metrics/{uid}"): metrics(
        lambda w, ct: (f"/api/metrics/{w.definitions[ct].uid}", {"name": "Renamed"}),
        writes(200, outsider=403, admin_key=403),
        contextual=True,
    ),
    ("DELETE", "/api/metrics/{uid}"): metrics(
        lambda w, ct: (f"/api/metrics/{w.spare_definition.uid}", None),
        writes(200, outsider=403, admin_key=403),
    ),
    # Metric values of one entity.
    ("GET", "/api/metrics/values/{context_type}/{entity_uid}"): metrics(
        lambda w, ct: (f"/api/metrics/values/{ct}/{w.entity(ct).uid}", None),
        reads(),
        contextual=True,
    ),
    ("POST", "/api/metrics/values/{context_type}/{entity_uid}"): metrics(
        lambda w, ct: (f"/api/metrics/values/{ct}/{w.entity(ct).uid}", _value_body(w, ct)),
        writes(201),
        contextual=True,
    ),
    ("GET", "/api/metrics/values/{value_uid}"): metrics(
        lambda w, ct: (f"/api/metrics/values/{w.acme_values[ct].uid}", None),
        reads(),
        contextual=True,
    ),
    ("GET", "/api/metrics/values/{value_uid}/history"): metrics(
        lambda w, ct: (f"/api/metrics/values/{w.acme_values[ct].uid}/history", None),
        reads(),
        contextual=True,
    ),
    ("PATCH", "/api/metrics/values/{value_uid}"): metrics(
        lambda w, ct: (f"/api/metrics/values/{w.acme_values[ct].uid}", {"value": 8}),
        writes(200),
        contextual=True,
    ),
    ("DELETE", "/api/metrics/values/{value_uid}"): metrics(
        lambda w, ct: (f"/api/metrics/values/{w.acme_values[ct].uid}", None),
        writes(200),
        contextual=True,
    ),
    # Bulk: per-item checks; with on_conflict=error one refused item fails the call (400).
    ("POST", "/api/metrics/values/bulk"): metrics(
        lambda w, ct: (
            "/api/metrics/values/bulk",
            {
                "items": [
                    {"context_type": ct, "entity_uid": str(w.entity(ct).uid), **_value_body(w, ct)}
                ]
            },
        ),
        writes(200, viewer=400, outsider=400),
        contextual=True,
    ),
    # Series: values of one entity combined into periods.
    ("GET", "/api/metrics/series/{context_type}/{entity_uid}"): metrics(
        lambda w, ct: (
            f"/api/metrics/series/{ct}/{w.entity(ct).uid}?metric_uid={w.definitions[ct].uid}",
            None,
        ),
        reads(),
        contextual=True,
    ),
    ("GET", "/api/metrics/coverage/{context_type}/{entity_uid}"): metrics(
        lambda w, ct: (
            f"/api/metrics/coverage/{ct}/{w.entity(ct).uid}?metric_uid={w.definitions[ct].uid}",
            None,
        ),
        reads(),
        contextual=True,
    ),
    ("GET", "/api/organizations/{uid}/freshness"): metrics(
        lambda w, ct: (
            f"/api/organizations/{w.acme.uid}/freshness?metric_uid={w.definitions[ct].uid}",
            None,
        ),
        reads(),
        contextual=True,
    ),
    # Organizations.
    ("GET", "/api/organizations"): entities(
        lambda w, ct: ("/api/organizations", None), reads(outsider=200)
    ),
    ("POST", "/api/organizations"): entities(
        lambda w, ct: ("/api/organizations", {"name": "Fresh Org"}),
        writes(201, outsider=403, admin_key=403),
    ),
    ("GET", "/api/organizations/{uid}"): entities(
        lambda w, ct: (f"/api/organizations/{w.acme.uid}", None), reads()
    ),
    ("PATCH", "/api/organizations/{uid}"): entities(
        lambda w, ct: (f"/api/organizations/{w.acme.uid}", {"timezone": "Europe/Rome"}),
        writes(200),
    ),
    ("GET", "/api/organizations/{organization_uid}/members"): entities(
        lambda w, ct: (f"/api/organizations/{w.acme.uid}/members", None), reads()
    ),
    # The loner shares no organization with Acme's admin: only staff may add them directly
    # (an admin invites them instead), and the admin's key hears "no such user".
    ("POST", "/api/organizations/{organization_uid}/members"): entities(
        lambda w, ct: (
            f"/api/organizations/{w.acme.uid}/members",
            {"user_uid": str(w.loner.uid), "role": "viewer"},
        ),
        writes(201, admin_key=400),
    ),
    ("GET", "/api/organizations/{organization_uid}/members/{user_uid}"): entities(
        lambda w, ct: (f"/api/organizations/{w.acme.uid}/members/{w.editor.uid}", None), reads()
    ),
    ("PATCH", "/api/organizations/{organization_uid}/members/{user_uid}"): entities(
        lambda w, ct: (
            f"/api/organizations/{w.acme.uid}/members/{w.editor.uid}",
            {"role": "viewer"},
        ),
        writes(200),
    ),
    ("DELETE", "/api/organizations/{organization_uid}/members/{user_uid}"): entities(
        lambda w, ct: (f"/api/organizations/{w.acme.uid}/members/{w.editor.uid}", None),
        writes(200),
    ),
    # Invitations of an organization: its admins and staff only, any method needs
    # entities:write; a viewer can see the organization (403), the outsider cannot (404).
    ("GET", "/api/organizations/{organization_uid}/invitations"): entities(
        lambda w, ct: (f"/api/organizations/{w.acme.uid}/invitations", None), writes(200)
    ),
    ("POST", "/api/organizations/{organization_uid}/invitations"): entities(
        lambda w, ct: (
            f"/api/organizations/{w.acme.uid}/invitations",
            {"email": "someone@globex.test", "role": "viewer"},
        ),
        writes(201),
    ),
    ("GET", "/api/organizations/{organization_uid}/invitations/{invitation_uid}"): entities(
        lambda w, ct: (
            f"/api/organizations/{w.acme.uid}/invitations/{w.invitation.uid}",
            None,
        ),
        writes(200),
    ),
    ("DELETE", "/api/organizations/{organization_uid}/invitations/{invitation_uid}"): entities(
        lambda w, ct: (
            f"/api/organizations/{w.acme.uid}/invitations/{w.invitation.uid}",
            None,
        ),
        writes(200),
    ),
    # The caller's own invitations: JWT only, and nobody but the addressee (the loner) may
    # answer the one invitation there is, staff included.
    ("GET", "/api/user/invitations"): entities(
        lambda w, ct: ("/api/user/invitations", None), reads(outsider=200, admin_key=403)
    ),
    ("POST", "/api/user/invitations/{invitation_uid}/accept"): entities(
        lambda w, ct: (f"/api/user/invitations/{w.invitation.uid}/accept", None),
        {"viewer": 404, "outsider": 404, "staff": 404, "admin_key": 403},
    ),
    ("POST", "/api/user/invitations/{invitation_uid}/decline"): entities(
        lambda w, ct: (f"/api/user/invitations/{w.invitation.uid}/decline", None),
        {"viewer": 404, "outsider": 404, "staff": 404, "admin_key": 403},
    ),
    # Parties.
    ("GET", "/api/parties"): entities(lambda w, ct: ("/api/parties", None), reads(outsider=200)),
    ("POST", "/api/parties"): entities(
        lambda w, ct: ("/api/parties", {"organization_uid": str(w.acme.uid), "name": "New P"}),
        writes(201, outsider=400),
    ),
    ("GET", "/api/parties/{uid}"): entities(
        lambda w, ct: (f"/api/parties/{w.acme_party.uid}", None), reads()
    ),
    ("PATCH", "/api/parties/{uid}"): entities(
        lambda w, ct: (f"/api/parties/{w.acme_party.uid}", {"external_ref": "X-1"}),
        writes(200),
    ),
    # Users.
    ("GET", "/api/users"): entities(lambda w, ct: ("/api/users", None), reads(outsider=200)),
    ("POST", "/api/users"): entities(
        lambda w, ct: (
            "/api/users",
            {"email": "new@example.test", "password": "a-fine-long-password-7"},
        ),
        writes(201, outsider=403, admin_key=403),
    ),
    ("GET", "/api/users/{uid}"): entities(
        lambda w, ct: (f"/api/users/{w.editor.uid}", None), reads()
    ),
    ("GET", "/api/user"): entities(lambda w, ct: ("/api/user", None), reads(outsider=200)),
    # API keys: personal, JWT only (a key cannot manage keys).
    ("GET", "/api/api-keys"): entities(
        lambda w, ct: ("/api/api-keys", None), reads(outsider=200, admin_key=403)
    ),
    ("POST", "/api/api-keys"): entities(
        lambda w, ct: ("/api/api-keys", {"name": "k", "organization_uid": str(w.acme.uid)}),
        writes(201, viewer=201, outsider=400, admin_key=403),
    ),
    ("GET", "/api/api-keys/{uid}"): entities(
        lambda w, ct: (f"/api/api-keys/{w.editor_key.uid}", None),
        {"viewer": 404, "outsider": 404, "staff": 404, "admin_key": 403},
    ),
    ("DELETE", "/api/api-keys/{uid}"): entities(
        lambda w, ct: (f"/api/api-keys/{w.editor_key.uid}", None),
        {"viewer": 404, "outsider": 404, "staff": 404, "admin_key": 403},
    ),
}


def _cases():
    for (method, path), endpoint in MATRIX.items():
        contexts = CONTEXT_TYPES if endpoint.contextual else ("ORGANIZATION",)
        for context_type in contexts:
            for principal in PRINCIPALS:
                yield pytest.param(
                    method,
                    path,
                    context_type,
                    principal,
                    id=f"{method} {path} [{context_type}] {principal}",
                )


# --- Tests --------------------------------------------------------------------------------------


def enumerated_endpoints() -> set[tuple[str, str]]:
    """Every (method, path) the URL conf routes to a DRF view (trailing slashes folded)."""
    return {
        (method.upper(), path.rstrip("/") or "/")
        for path, _regex, method, _callback in EndpointEnumerator().get_api_endpoints()
    }


def test_every_endpoint_is_in_the_matrix():
    missing = sorted(enumerated_endpoints() - set(MATRIX))
    assert not missing, f"endpoints without an outsider-matrix entry: {missing}"


def test_the_matrix_has_no_stale_entries():
    stale = sorted(set(MATRIX) - enumerated_endpoints())
    assert not stale, f"matrix entries for endpoints that no longer exist: {stale}"


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _request(client: APIClient, method: str, url: str, body: dict | None):
    call = getattr(client, method.lower())
    if body is None:
        return call(url)
    return call(url, body, format="json")


def _list_meta(payload) -> tuple[list, dict] | None:
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, dict) and "items" in data and "_meta" in data:
        return data["items"], data["_meta"]
    return None


@pytest.mark.parametrize(("method", "path", "context_type", "principal"), list(_cases()))
def test_outsider_matrix(world, schema, method, path, context_type, principal):
    endpoint = MATRIX[(method, path)]
    url, body = endpoint.build(world, context_type)
    client = client_for(principal, world, endpoint)
    response = _request(client, method, url, body)
    expected = endpoint.status_for(principal)
    text = response.content.decode("utf-8", "replace")
    assert response.status_code == expected, text[:500]

    if path not in ("/api/schema", "/api/docs", "/api/redoc"):
        documented = schema["paths"][path][method.lower()]["responses"]
        assert str(expected) in documented, f"{expected} is not documented for {method} {path}"
        payload = json.loads(text)
        assert payload["status_code"] == expected
        if expected >= 400:
            assert payload["status"] == "error" and payload["code"]
        if expected == 401:
            assert response["WWW-Authenticate"].startswith("Bearer")
            assert payload["code"] in ("not_authenticated", "authentication_failed")

        # Nothing the caller may not see, except what it sent itself (a 404 may repeat
        # the uid of the path).
        sent = url + (json.dumps(body) if body else "")
        leaked = sorted(secret for secret in secrets_for(principal, world) if secret in text)
        leaked = [secret for secret in leaked if secret not in sent]
        assert not leaked, f"{principal} can read {leaked} in {text[:500]}"

        listing = _list_meta(payload)
        if listing is not None:
            items, meta = listing
            # Small lists fit one page, so the count must be exactly what is listed: no
            # invisible row may be counted.
            assert meta["total_items"] == len(items), meta
