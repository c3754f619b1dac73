"""Users, the caller (``GET /api/user``) and memberships."""

import uuid

import pytest
from django.core.management import call_command

from entities.models import Membership, Role, User

pytestmark = pytest.mark.django_db


def items(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["data"]["items"]


@pytest.fixture
def admin_client(client_for, org_admin):
    return client_for(org_admin)


class TestUsers:
    def test_lists_self_and_co_members_only(self, viewer_client, viewer, editor, outsider):
        response = viewer_client.get("/api/users")
        assert [item["email"] for item in items(response)] == [editor.email, viewer.email]
        assert response.json()["data"]["_meta"]["total_items"] == 2
        assert outsider.email not in response.content.decode()

    def test_fields_leave_out_secrets(self, viewer_client, viewer):
        (item,) = [i for i in items(viewer_client.get("/api/users")) if i["email"] == viewer.email]
        assert set(item) == {"uid", "email", "first_name", "last_name", "timezone", "is_active"}

    def test_organization_filter_only_reveals_visible_organizations(
        self, make_user, client_for, organization, other_organization, viewer
    ):
        both = make_user("both@example.com", organization=other_organization)
        Membership.objects.create(user=both, organization=organization, role=Role.VIEWER)
        globex_only = make_user("globex@example.com", organization=other_organization)
        # globex_only shares Globex with `both`, but must not learn that `both` is in Acme.
        response = client_for(globex_only).get("/api/users", {"organization_uid": organization.uid})
        assert items(response) == []
        mine = client_for(viewer).get("/api/users", {"organization_uid": organization.uid})
        assert both.email in [item["email"] for item in items(mine)]

    def test_search_and_sort(self, staff_client, make_user):
        make_user("zed@example.com", first_name="Ann")
        make_user("amy@example.com", last_name="Annson")
        found = items(staff_client.get("/api/users", {"search": "ann", "sort": "-email"}))
        assert [item["email"] for item in found] == ["zed@example.com", "amy@example.com"]

    def test_detail_of_invisible_user_is_404(self, viewer_client, outsider):
        response = viewer_client.get(f"/api/users/{outsider.uid}")
        assert response.status_code == 404
        assert outsider.email not in response.content.decode()

    def test_detail_of_self_and_co_member(self, viewer_client, viewer, editor):
        assert viewer_client.get(f"/api/users/{viewer.uid}").status_code == 200
        assert viewer_client.get(f"/api/users/{editor.uid}").json()["data"]["email"] == (
            editor.email
        )


class TestCreateUser:
    body = {
        "email": "New.Person@Example.com",
        "password": "a-sturdy-passphrase-42",
        "first_name": "New",
        "last_name": "Person",
        "timezone": "Europe/Paris",
    }

    def test_staff_creates_user_with_lowercased_email(self, staff_client):
        response = staff_client.post("/api/users", self.body)
        assert response.status_code == 201, response.content
        data = response.json()["data"]
        assert data["email"] == "new.person@example.com"
        assert "password" not in data
        user = User.objects.get(uid=data["uid"])
        assert user.check_password(self.body["password"])
        assert not user.is_staff
        assert response["Location"].endswith(f"/api/users/{data['uid']}")

    def test_duplicate_email_in_any_case_is_409(self, staff_client, viewer):
        response = staff_client.post("/api/users", {**self.body, "email": viewer.email.upper()})
        assert response.status_code == 409
        assert response.json()["code"] == "duplicate_email"
        assert User.objects.filter(email=viewer.email).count() == 1

    def test_org_admin_cannot_create_users(self, admin_client):
        assert admin_client.post("/api/users", self.body).status_code == 403

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"password": "short"}, "password"),
            ({"password": "password"}, "password"),
            ({"password": 12345678901}, "password"),
            ({"email": "not-an-email"}, "email"),
            ({"email": 5}, "email"),
            ({"timezone": "Nowhere/Land"}, "timezone"),
            ({"is_staff": True}, "is_staff"),
        ],
    )
    def test_bad_body_is_400(self, staff_client, change, field):
        response = staff_client.post("/api/users", {**self.body, **change})
        assert response.status_code == 400
        assert field in response.json()["errors"]
        assert not User.objects.filter(email__startswith="new.person").exists()


class TestCurrentUser:
    def test_shows_memberships(self, viewer_client, viewer, organization):
        data = viewer_client.get("/api/user").json()["data"]
        assert data["uid"] == str(viewer.uid)
        assert data["memberships"] == [
            {
                "organization_uid": str(organization.uid),
                "organization_name": "Acme Corp",
                "role": "viewer",
            }
        ]
        assert data["authentication"]["method"] == "jwt"

    def test_through_a_key_only_the_keys_organization_is_listed(
        self, viewer, organization, other_organization, make_api_key, key_client
    ):
        Membership.objects.create(user=viewer, organization=other_organization, role=Role.ADMIN)
        api_key, raw = make_api_key(viewer, organization)
        data = key_client(raw).get("/api/user").json()["data"]
        assert [m["organization_uid"] for m in data["memberships"]] == [str(organization.uid)]
        assert "Globex" not in str(data)
        assert data["authentication"] == {
            "method": "api_key",
            "api_key_uid": str(api_key.uid),
            "organization_uid": str(organization.uid),
            "scopes": ["entities:read", "metrics:read"],
        }

    def test_anonymous_is_401(self, anon_client):
        response = anon_client.get("/api/user")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


class TestMembers:
    def url(self, organization, user=None) -> str:
        base = f"/api/organizations/{organization.uid}/members"
        return f"{base}/{user.uid}" if user else base

    def test_every_member_lists_members(self, viewer_client, organization, viewer, editor):
        found = items(viewer_client.get(self.url(organization)))
        assert {(m["email"], m["role"]) for m in found} == {
            (viewer.email, "viewer"),
            (editor.email, "editor"),
        }

    def test_filter_by_role(self, viewer_client, organization, viewer, editor):
        found = items(viewer_client.get(self.url(organization), {"role": "editor"}))
        assert [m["email"] for m in found] == [editor.email]

    def test_outsider_gets_404(self, outsider_client, organization, viewer):
        assert outsider_client.get(self.url(organization)).status_code == 404
        assert outsider_client.get(self.url(organization, viewer)).status_code == 404
        response = outsider_client.post(self.url(organization), {"user_uid": str(viewer.uid)})
        assert response.status_code == 404

    def test_admin_adds_a_member(
        self, admin_client, org_admin, organization, other_organization, make_user
    ):
        # A user the admin already shares an organization with (the direct-add rule).
        Membership.objects.create(user=org_admin, organization=other_organization)
        newcomer = make_user("new@example.com", organization=other_organization)
        response = admin_client.post(
            self.url(organization), {"user_uid": str(newcomer.uid), "role": "editor"}
        )
        assert response.status_code == 201, response.content
        assert response["Location"].endswith(self.url(organization, newcomer))
        assert Membership.objects.get(user=newcomer, organization=organization).role == Role.EDITOR

    def test_adding_an_existing_member_is_409(self, admin_client, organization, viewer):
        response = admin_client.post(self.url(organization), {"user_uid": str(viewer.uid)})
        assert response.status_code == 409
        assert response.json()["code"] == "duplicate_membership"

    def test_unknown_user_is_400(self, admin_client, organization):
        response = admin_client.post(self.url(organization), {"user_uid": str(uuid.uuid4())})
        assert response.status_code == 400
        assert "user_uid" in response.json()["errors"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [({"role": "owner"}, "role"), ({"user_uid": 7}, "user_uid"), ({"x": 1}, "x")],
    )
    def test_bad_body_is_400(self, admin_client, organization, viewer, body, field):
        response = admin_client.post(self.url(organization), {"user_uid": str(viewer.uid), **body})
        assert response.status_code == 400
        assert field in response.json()["errors"]

    @pytest.mark.parametrize("who", ["viewer_client", "editor_client"])
    def test_non_admins_cannot_manage(self, request, who, organization, viewer, make_user):
        client = request.getfixturevalue(who)
        newcomer = make_user("new@example.com")
        add = client.post(self.url(organization), {"user_uid": str(newcomer.uid)})
        change = client.patch(self.url(organization, viewer), {"role": "admin"})
        remove = client.delete(self.url(organization, viewer))
        assert (add.status_code, change.status_code, remove.status_code) == (403, 403, 403)
        assert Membership.objects.get(user=viewer).role == Role.VIEWER

    def test_admin_changes_role_and_removes(self, admin_client, organization, viewer):
        response = admin_client.patch(self.url(organization, viewer), {"role": "editor"})
        assert response.status_code == 200
        assert response.json()["data"]["role"] == "editor"
        assert admin_client.delete(self.url(organization, viewer)).json()["data"] == {}
        assert not Membership.objects.filter(user=viewer).exists()

    def test_last_admin_cannot_be_demoted_or_removed(
        self, admin_client, staff_client, organization, org_admin
    ):
        demote = admin_client.patch(self.url(organization, org_admin), {"role": "viewer"})
        assert demote.status_code == 409
        assert demote.json()["code"] == "last_admin"
        assert staff_client.delete(self.url(organization, org_admin)).status_code == 409
        assert Membership.objects.get(user=org_admin).role == Role.ADMIN

    def test_second_admin_makes_demotion_possible(
        self, admin_client, organization, org_admin, editor
    ):
        admin_client.patch(self.url(organization, editor), {"role": "admin"})
        assert (
            admin_client.patch(self.url(organization, org_admin), {"role": "viewer"}).status_code
            == 200
        )

    def test_missing_member_is_404(self, admin_client, organization, outsider):
        assert (
            admin_client.patch(self.url(organization, outsider), {"role": "viewer"}).status_code
            == 404
        )

    def test_removed_members_keys_stop_working(
        self, admin_client, organization, editor, make_api_key, key_client
    ):
        _, raw = make_api_key(editor, organization)
        assert key_client(raw).get("/api/metrics").status_code == 200
        admin_client.delete(self.url(organization, editor))
        assert key_client(raw).get("/api/metrics").status_code == 401


def test_createsuperuser_noinput_reads_email_and_password_from_env(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Root@Example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "root-pass-that-is-long")
    call_command("createsuperuser", "--noinput", verbosity=0)
    user = User.objects.get(email="root@example.com")
    assert user.is_staff and user.is_superuser
    assert user.check_password("root-pass-that-is-long")
