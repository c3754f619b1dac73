"""Layered fixtures shared by every app's tests: organization → party/user → clients,
plus an outsider from another organization for every scoped endpoint."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from entities.models import Membership, Organization, Party, Role, User
from metrics.models import MetricDefinition

PASSWORD = "correct-horse-battery"


@pytest.fixture
def postgres_only():
    """Skip (with the reason) where the behaviour only means something on PostgreSQL."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


@pytest.fixture
def make_user(db):
    counter = iter(range(1, 10_000))

    def make(
        email: str | None = None,
        *,
        organization: Organization | None = None,
        role: str = Role.VIEWER,
        is_staff: bool = False,
        **extra,
    ) -> User:
        email = email or f"user{next(counter)}@example.com"
        user = User.objects.create_user(email, PASSWORD, is_staff=is_staff, **extra)
        if organization is not None:
            Membership.objects.create(user=user, organization=organization, role=role)
        return user

    return make


@pytest.fixture
def organization(db) -> Organization:
    return Organization.objects.create(name="Acme Corp", timezone="America/Los_Angeles")


@pytest.fixture
def other_organization(db) -> Organization:
    return Organization.objects.create(name="Globex", timezone="Europe/Paris")


@pytest.fixture
def party(organization) -> Party:
    return Party.objects.create(organization=organization, name="Initech", external_ref="C-1")


@pytest.fixture
def other_party(other_organization) -> Party:
    return Party.objects.create(organization=other_organization, name="Hooli")


@pytest.fixture
def viewer(make_user, organization) -> User:
    return make_user("viewer@acme.test", organization=organization, role=Role.VIEWER)


@pytest.fixture
def editor(make_user, organization) -> User:
    return make_user("editor@acme.test", organization=organization, role=Role.EDITOR)


@pytest.fixture
def org_admin(make_user, organization) -> User:
    return make_user("admin@acme.test", organization=organization, role=Role.ADMIN)


@pytest.fixture
def outsider(make_user, other_organization) -> User:
    """An editor of another organization: must never see or touch Acme's data."""
    return make_user("outsider@globex.test", organization=other_organization, role=Role.EDITOR)


@pytest.fixture
def staff(make_user) -> User:
    return make_user("staff@exante.test", is_staff=True)


def bearer_client(user: User) -> APIClient:
    client = APIClient()
    token = RefreshToken.for_user(user).access_token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def client_for():
    """``client_for(user)`` → an APIClient sending that user's JWT."""
    return bearer_client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_client(staff) -> APIClient:
    return bearer_client(staff)


@pytest.fixture
def editor_client(editor) -> APIClient:
    return bearer_client(editor)


@pytest.fixture
def viewer_client(viewer) -> APIClient:
    return bearer_client(viewer)


@pytest.fixture
def outsider_client(outsider) -> APIClient:
    return bearer_client(outsider)


@pytest.fixture
def make_definition(db):
    def make(uid: str = "total_ar", **fields) -> MetricDefinition:
        fields.setdefault("name", uid.replace("_", " ").title())
        return MetricDefinition.objects.create(uid=uid, **fields)

    return make


@pytest.fixture
def total_ar(make_definition) -> MetricDefinition:
    return make_definition(
        "total_ar",
        name="Total AR Outstanding",
        value_type="currency",
        storage_unit="cents",
        is_snapshot=True,
    )


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the cache; each test starts with none spent."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_api_key(db):
    """``make_api_key(user, organization, scopes=None, **fields)`` → ``(ApiKey, raw key)``.

    Goes through the service, so the scopes are checked against the user's role.
    """
    from entities.services import api_key_create

    def make(user: User, organization: Organization, scopes=None, *, name="test key", **extra):
        return api_key_create(
            user=user, organization=organization, name=name, scopes=scopes, **extra
        )

    return make


@pytest.fixture
def key_client():
    """``key_client(raw_key)`` → an APIClient sending ``Authorization: Bearer <raw_key>``."""

    def make(raw_key: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        return client

    return make


# --- Admin site ------------------------------------------------------------------------------


@pytest.fixture
def superuser(make_user) -> User:
    return make_user("root@exante.test", is_staff=True, is_superuser=True)


@pytest.fixture
def analyst(make_user) -> User:
    """A staff user in the "Analyst" group that migration metrics/0002 creates."""
    user = make_user("analyst@exante.test", is_staff=True)
    user.groups.add(Group.objects.get(name="Analyst"))
    return user


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client(superuser) -> Client:
    return logged_in(superuser)


@pytest.fixture
def analyst_client(analyst) -> Client:
    return logged_in(analyst)
