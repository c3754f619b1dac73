"""``/api/api-keys`` : create (the key shown once), list, revoke."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from entities.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def create(client_for, organization):
    def post(user, **body):
        body.setdefault("name", "ci")
        body.setdefault("organization_uid", str(organization.uid))
        return client_for(user).post("/api/api-keys", body)

    return post


class TestCreate:
    def test_key_is_shown_once(self, create, editor, client_for):
        response = create(editor, scopes=["metrics:read"], expires_in_days=30)
        assert response.status_code == 201, response.content
        data = response.json()["data"]
        raw = data["key"]
        assert raw.startswith("ex_live_") and len(raw) >= 40
        assert data["key_snippet"] == f"ex_live_...{raw[-4:]}"
        assert data["scopes"] == ["metrics:read"]
        expires = timezone.datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
        assert timedelta(days=29) < expires - timezone.now() <= timedelta(days=30)
        assert response["Location"].endswith(f"/api/api-keys/{data['uid']}")
        again = client_for(editor).get(f"/api/api-keys/{data['uid']}")
        assert again.status_code == 200
        assert "key" not in again.json()["data"]
        assert raw not in again.content.decode()
        listed = client_for(editor).get("/api/api-keys")
        assert raw not in listed.content.decode()

    def test_no_scopes_means_everything_the_role_allows(self, create, editor):
        data = create(editor).json()["data"]
        assert data["scopes"] == []
        assert data["expires_at"] is None

    def test_scope_beyond_the_role_is_400_naming_it(self, create, viewer):
        response = create(viewer, scopes=["metrics:read", "metrics:write"])
        assert response.status_code == 400
        assert "metrics:write" in response.json()["errors"]["scopes"][0]
        assert not ApiKey.objects.exists()

    def test_only_staff_may_hold_metrics_admin(self, create, org_admin, staff):
        assert create(org_admin, scopes=["metrics:admin"]).status_code == 400
        assert create(staff, scopes=["metrics:admin"]).status_code == 201

    def test_staff_may_create_a_key_for_any_organization(self, create, staff, other_organization):
        response = create(staff, organization_uid=str(other_organization.uid))
        assert response.status_code == 201

    def test_foreign_organization_is_400_like_a_missing_one(self, create, outsider, organization):
        hidden = create(outsider)
        missing = create(outsider, organization_uid=str(uuid.uuid4()))
        assert hidden.status_code == missing.status_code == 400
        assert "organization_uid" in hidden.json()["errors"]
        assert "Acme" not in hidden.content.decode()

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": ""}, "name"),
            ({"name": 3}, "name"),
            ({"scopes": "metrics:read"}, "scopes"),
            ({"scopes": ["metrics:everything"]}, "scopes"),
            ({"expires_in_days": 0}, "expires_in_days"),
            ({"expires_in_days": 3651}, "expires_in_days"),
            ({"expires_in_days": "7"}, "expires_in_days"),
            ({"expires_in_days": 7.5}, "expires_in_days"),
            ({"expires_in_days": True}, "expires_in_days"),
            ({"organization_uid": "acme"}, "organization_uid"),
            ({"key": "ex_live_mine"}, "key"),
        ],
    )
    def test_bad_body_is_400(self, create, editor, body, field):
        response = create(editor, **body)
        assert response.status_code == 400
        # Nested errors use dotted paths (``scopes.0``).
        assert any(key.split(".")[0] == field for key in response.json()["errors"])
        assert not ApiKey.objects.exists()


class TestListAndRevoke:
    def test_lists_only_own_keys(self, create, editor, viewer, client_for):
        create(editor, name="mine")
        create(viewer, name="theirs")
        names = [k["name"] for k in client_for(editor).get("/api/api-keys").json()["data"]["items"]]
        assert names == ["mine"]

    def test_other_users_key_is_404(self, create, editor, viewer, client_for):
        uid = create(viewer).json()["data"]["uid"]
        assert client_for(editor).get(f"/api/api-keys/{uid}").status_code == 404
        assert client_for(editor).delete(f"/api/api-keys/{uid}").status_code == 404
        assert ApiKey.objects.get(uid=uid).revoked_at is None

    def test_staff_cannot_revoke_others_keys_through_the_api(self, create, viewer, staff_client):
        uid = create(viewer).json()["data"]["uid"]
        assert staff_client.delete(f"/api/api-keys/{uid}").status_code == 404

    def test_revoke_is_idempotent_and_keeps_the_first_time(self, create, editor, client_for):
        uid = create(editor).json()["data"]["uid"]
        client = client_for(editor)
        assert client.delete(f"/api/api-keys/{uid}").json()["data"] == {}
        first = ApiKey.objects.get(uid=uid).revoked_at
        assert first is not None
        assert client.delete(f"/api/api-keys/{uid}").status_code == 200
        assert ApiKey.objects.get(uid=uid).revoked_at == first

    def test_filter_revoked(self, create, editor, client_for):
        keep = create(editor, name="keep").json()["data"]["uid"]
        gone = create(editor, name="gone").json()["data"]["uid"]
        client = client_for(editor)
        client.delete(f"/api/api-keys/{gone}")
        active = client.get("/api/api-keys", {"is_revoked": "false"}).json()["data"]["items"]
        revoked = client.get("/api/api-keys", {"is_revoked": "true"}).json()["data"]["items"]
        assert [k["uid"] for k in active] == [keep]
        assert [k["uid"] for k in revoked] == [gone]

    def test_newest_first_by_default(self, create, editor, client_for):
        for name in ("one", "two", "three"):
            create(editor, name=name)
        names = [k["name"] for k in client_for(editor).get("/api/api-keys").json()["data"]["items"]]
        assert names == ["three", "two", "one"]
