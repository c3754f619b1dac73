"""Invitations: how an organization admin brings in a user from outside the admin's
organizations. Nothing is granted until the addressee accepts in person, and no answer tells
which emails or users exist."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from entities.models import Invitation, InvitationStatus, Membership, Organization, Role
from entities.services import invitation_create
from metrics.models import MetricValue

pytestmark = pytest.mark.django_db


def invitations_url(organization, invitation=None) -> str:
    base = f"/api/organizations/{organization.uid}/invitations"
    return (
        f"{base}/{invitation.uid if hasattr(invitation, 'uid') else invitation}"
        if invitation
        else base
    )


def answer_url(invitation, answer: str) -> str:
    uid = invitation.uid if hasattr(invitation, "uid") else invitation
    return f"/api/user/invitations/{uid}/{answer}"


def data(response) -> dict:
    return response.json()["data"]


@pytest.fixture
def admin_client(client_for, org_admin):
    return client_for(org_admin)


@pytest.fixture
def invite(admin_client, organization):
    """``invite(email, role="viewer")`` → the Invitation an Acme admin created via the API."""

    def make(email: str, role: str = "viewer") -> Invitation:
        response = admin_client.post(invitations_url(organization), {"email": email, "role": role})
        assert response.status_code == 201, response.content
        return Invitation.objects.get(uid=data(response)["uid"])

    return make


@pytest.fixture
def outsider_user_value(make_definition, outsider, other_organization):
    """A USER value of Globex's editor, written inside Globex."""
    definition = make_definition("hours_logged", context_type="USER")
    return MetricValue.objects.create(
        metric=definition,
        context_type="USER",
        entity_uid=outsider.uid,
        metric_date=timezone.localdate() - timedelta(days=1),
        value=12,
    )


class TestInviting:
    def test_admin_invites_an_email(self, admin_client, organization, org_admin):
        before = timezone.now()
        response = admin_client.post(
            invitations_url(organization), {"email": "New.Person@Example.COM", "role": "editor"}
        )
        assert response.status_code == 201, response.content
        body = data(response)
        assert response["Location"].endswith(invitations_url(organization, body["uid"]))
        assert {key: body[key] for key in ("organization_uid", "organization_name")} == {
            "organization_uid": str(organization.uid),
            "organization_name": organization.name,
        }
        assert (body["email"], body["role"], body["status"]) == (
            "new.person@example.com",
            "editor",
            "pending",
        )
        assert body["invited_by"] == {"uid": str(org_admin.uid), "email": org_admin.email}
        invitation = Invitation.objects.get(uid=body["uid"])
        assert uuid.UUID(body["uid"]).version == 7
        assert invitation.created_at >= before
        assert invitation.expires_at - invitation.created_at == timedelta(days=7)

    @override_settings(INVITATION_TTL_DAYS=2)
    def test_lifetime_comes_from_the_setting(self, invite):
        invitation = invite("someone@example.com")
        assert invitation.expires_at - invitation.created_at == timedelta(days=2)

    def test_answer_is_the_same_whether_or_not_the_account_exists(
        self, admin_client, organization, outsider
    ):
        existing = admin_client.post(invitations_url(organization), {"email": outsider.email})
        unknown = admin_client.post(
            invitations_url(organization), {"email": "nobody-here@globex.test"}
        )
        assert (existing.status_code, unknown.status_code) == (201, 201)
        varying = {"uid", "email", "created_at", "expires_at"}

        def shape(response):
            payload = response.json()
            body = {k: v for k, v in payload["data"].items() if k not in varying}
            return payload["message"], sorted(payload["data"]), body

        assert shape(existing) == shape(unknown)

    def test_reinviting_replaces_the_pending_invitation(
        self, admin_client, organization, invite, outsider, client_for
    ):
        first = invite(outsider.email, "viewer")
        second = invite(outsider.email.upper(), "editor")
        first.refresh_from_db()
        assert first.status == InvitationStatus.REVOKED
        assert Invitation.objects.filter(status=InvitationStatus.PENDING).count() == 1
        invitee = client_for(outsider)
        assert invitee.post(answer_url(first, "accept")).status_code == 404
        response = invitee.post(answer_url(second, "accept"))
        assert response.status_code == 201
        assert data(response)["role"] == "editor"

    def test_reinviting_after_expiry_opens_a_fresh_invitation(self, invite, outsider, client_for):
        stale = invite(outsider.email)
        Invitation.objects.filter(pk=stale.pk).update(expires_at=timezone.now())
        fresh = invite(outsider.email)
        assert fresh.uid != stale.uid
        assert client_for(outsider).post(answer_url(fresh, "accept")).status_code == 201

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"email": 7}, "email"),
            ({"email": "not-an-email"}, "email"),
            ({"email": "x" * 250 + "@example.com"}, "email"),
            ({}, "email"),
            ({"email": "a@example.com", "role": "owner"}, "role"),
            ({"email": "a@example.com", "organization_uid": "x"}, "organization_uid"),
        ],
    )
    def test_bad_body_is_400_and_writes_nothing(self, admin_client, organization, body, field):
        response = admin_client.post(invitations_url(organization), body)
        assert response.status_code == 400
        assert field in response.json()["errors"]
        assert not Invitation.objects.exists()


class TestWhoManagesInvitations:
    @pytest.mark.parametrize("who", ["viewer_client", "editor_client"])
    def test_members_who_are_not_admins_get_403(self, request, who, organization, invite):
        invitation = invite("someone@example.com")
        client = request.getfixturevalue(who)
        answers = (
            client.get(invitations_url(organization)).status_code,
            client.get(invitations_url(organization, invitation)).status_code,
            client.post(invitations_url(organization), {"email": "x@example.com"}).status_code,
            client.delete(invitations_url(organization, invitation)).status_code,
        )
        assert answers == (403, 403, 403, 403)
        assert Invitation.objects.get().status == InvitationStatus.PENDING

    def test_another_organizations_admin_gets_404(
        self, client_for, make_user, organization, other_organization, invite
    ):
        invitation = invite("someone@example.com")
        globex_admin = make_user(
            "admin@globex.test", organization=other_organization, role=Role.ADMIN
        )
        client = client_for(globex_admin)
        assert client.get(invitations_url(organization)).status_code == 404
        assert client.delete(invitations_url(organization, invitation)).status_code == 404
        # Through their own organization's path, Acme's invitation does not exist.
        assert client.delete(invitations_url(other_organization, invitation)).status_code == 404
        assert Invitation.objects.get().status == InvitationStatus.PENDING

    def test_staff_invite_and_revoke(self, staff_client, organization, staff):
        response = staff_client.post(invitations_url(organization), {"email": "a@example.com"})
        assert response.status_code == 201
        assert data(response)["invited_by"]["uid"] == str(staff.uid)
        url = invitations_url(organization, data(response)["uid"])
        assert staff_client.delete(url).json()["data"] == {}
        assert Invitation.objects.get().status == InvitationStatus.REVOKED

    def test_an_admins_key_needs_entities_write(
        self, org_admin, organization, make_api_key, key_client, invite
    ):
        invite("someone@example.com")
        _, full = make_api_key(org_admin, organization)
        _, read_only = make_api_key(org_admin, organization, ["entities:read"])
        assert key_client(full).get(invitations_url(organization)).status_code == 200
        created = key_client(full).post(invitations_url(organization), {"email": "k@example.com"})
        assert created.status_code == 201
        refused = key_client(read_only).get(invitations_url(organization))
        assert refused.status_code == 403
        assert "entities:write" in refused.json()["message"]

    def test_revoking_an_answered_invitation_keeps_its_status(
        self, admin_client, organization, invite, outsider, client_for
    ):
        invitation = invite(outsider.email)
        client_for(outsider).post(answer_url(invitation, "accept"))
        assert admin_client.delete(invitations_url(organization, invitation)).status_code == 200
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.ACCEPTED
        assert Membership.objects.filter(user=outsider, organization=organization).exists()


class TestAccepting:
    def test_invitee_sees_and_accepts(self, organization, invite, outsider, client_for):
        invitation = invite(outsider.email.upper(), "editor")
        invitee = client_for(outsider)
        listed = invitee.get("/api/user/invitations")
        assert [item["uid"] for item in data(listed)["items"]] == [str(invitation.uid)]
        assert data(listed)["items"][0]["organization_name"] == organization.name
        response = invitee.post(answer_url(invitation, "accept"))
        assert response.status_code == 201, response.content
        assert data(response) == {
            "organization_uid": str(organization.uid),
            "organization_name": organization.name,
            "role": "editor",
        }
        assert response["Location"].endswith(
            f"/api/organizations/{organization.uid}/members/{outsider.uid}"
        )
        assert Membership.objects.get(user=outsider, organization=organization).role == "editor"
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.ACCEPTED
        assert invitation.responded_at is not None
        assert data(invitee.get("/api/user/invitations"))["items"] == []

    def test_after_accepting_the_inviting_organization_sees_the_users_values(
        self, admin_client, viewer_client, invite, outsider, client_for, outsider_user_value
    ):
        url = f"/api/metrics/values/USER/{outsider.uid}"
        assert admin_client.get(url).status_code == 404
        invitation = invite(outsider.email)
        assert admin_client.get(url).status_code == 404  # an invitation alone grants nothing
        client_for(outsider).post(answer_url(invitation, "accept"))
        for client in (admin_client, viewer_client):
            response = client.get(url)
            assert response.status_code == 200
            assert [item["uid"] for item in data(response)["items"]] == [
                str(outsider_user_value.uid)
            ]
        # Admins (writers) may change it too: that is what the user agreed to.
        patched = admin_client.patch(f"/api/metrics/values/{outsider_user_value.uid}", {"value": 3})
        assert patched.status_code == 200

    def test_admin_cannot_accept_an_invitation_sent_to_someone_else(
        self, admin_client, invite, outsider, outsider_user_value
    ):
        invitation = invite(outsider.email)
        assert data(admin_client.get("/api/user/invitations"))["items"] == []
        assert admin_client.post(answer_url(invitation, "accept")).status_code == 404
        assert admin_client.post(answer_url(invitation, "decline")).status_code == 404
        assert not Membership.objects.filter(user=outsider, organization__name="Acme Corp").exists()
        assert Invitation.objects.get().status == InvitationStatus.PENDING
        assert admin_client.get(f"/api/metrics/values/USER/{outsider.uid}").status_code == 404

    def test_someone_elses_invitation_reads_like_a_missing_one(
        self, invite, outsider, viewer_client
    ):
        invitation = invite(outsider.email)
        missing = uuid.uuid4()
        foreign = viewer_client.post(answer_url(invitation, "accept"))
        unknown = viewer_client.post(answer_url(missing, "accept"))
        assert (foreign.status_code, unknown.status_code) == (404, 404)
        assert foreign.json()["message"].replace(str(invitation.uid), "?") == unknown.json()[
            "message"
        ].replace(str(missing), "?")
        assert foreign.json()["code"] == unknown.json()["code"] == "not_found"

    @pytest.mark.parametrize(
        "state", ["accepted", "declined", "revoked", "expired", "expired_by_time"]
    )
    @pytest.mark.parametrize("answer", ["accept", "decline"])
    def test_an_invitation_no_longer_pending_is_404(
        self, state, answer, invite, outsider, client_for, admin_client, organization
    ):
        invitation = invite(outsider.email)
        invitee = client_for(outsider)
        if state == "accepted":
            assert invitee.post(answer_url(invitation, "accept")).status_code == 201
        elif state == "declined":
            assert invitee.post(answer_url(invitation, "decline")).status_code == 200
        elif state == "revoked":
            admin_client.delete(invitations_url(organization, invitation))
        elif state == "expired":
            Invitation.objects.filter(pk=invitation.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
        memberships = Membership.objects.count()
        if state == "expired_by_time":
            later = timezone.now() + timedelta(days=7, seconds=1)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(timezone, "now", lambda: later)
                response = invitee.post(answer_url(invitation, answer))
                listed = data(invitee.get("/api/user/invitations"))
        else:
            response = invitee.post(answer_url(invitation, answer))
            listed = data(invitee.get("/api/user/invitations"))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert listed["items"] == [] and listed["_meta"]["total_items"] == 0
        assert Membership.objects.count() == memberships

    def test_time_travel_reads_the_invitation_as_expired(
        self, invite, admin_client, organization, outsider
    ):
        invitation = invite(outsider.email)
        url = invitations_url(organization, invitation)
        assert data(admin_client.get(url))["status"] == "pending"
        later = invitation.expires_at + timedelta(seconds=1)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(timezone, "now", lambda: later)
            assert data(admin_client.get(url))["status"] == "expired"
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.PENDING  # derived, never written

    def test_decline(self, invite, outsider, client_for):
        invitation = invite(outsider.email)
        response = client_for(outsider).post(answer_url(invitation, "decline"))
        assert response.status_code == 200
        assert data(response)["status"] == "declined"
        assert not Membership.objects.filter(user=outsider, organization__name="Acme Corp").exists()

    def test_an_existing_member_accepting_is_409_and_the_invitation_stays(
        self, invite, viewer, client_for
    ):
        invitation = invite(viewer.email, "admin")
        response = client_for(viewer).post(answer_url(invitation, "accept"))
        assert response.status_code == 409
        assert response.json()["code"] == "duplicate_membership"
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.PENDING
        assert Membership.objects.get(user=viewer).role == Role.VIEWER

    def test_api_keys_cannot_answer_invitations(
        self, invite, make_user, other_organization, make_api_key, key_client
    ):
        invitee = make_user("invitee@globex.test", organization=other_organization, role="admin")
        invitation = invite(invitee.email)
        _, raw = make_api_key(invitee, other_organization)
        client = key_client(raw)
        assert client.get("/api/user/invitations").status_code == 403
        assert client.post(answer_url(invitation, "accept")).status_code == 403
        assert Invitation.objects.get().status == InvitationStatus.PENDING


class TestLists:
    def test_organization_list_conventions(self, admin_client, organization, invite):
        for number in range(3):
            invite(f"person{number}@example.com")
        response = admin_client.get(
            invitations_url(organization), {"per_page": 2, "page": 2, "sort": "email"}
        )
        assert response.status_code == 200
        assert [item["email"] for item in data(response)["items"]] == ["person2@example.com"]
        assert data(response)["_meta"] == {
            "page": 2,
            "per_page": 2,
            "total_pages": 2,
            "total_items": 3,
        }
        newest = data(admin_client.get(invitations_url(organization)))["items"][0]
        assert newest["email"] == "person2@example.com"  # default sort -created_at

    def test_unknown_sort_is_400_naming_the_allowed_fields(self, admin_client, organization):
        response = admin_client.get(invitations_url(organization), {"sort": "role"})
        assert response.status_code == 400
        assert "created_at" in str(response.json()["errors"])

    def test_status_filter_reads_expiry(self, admin_client, organization, invite):
        stale = invite("stale@example.com")
        invite("fresh@example.com")
        Invitation.objects.filter(pk=stale.pk).update(expires_at=timezone.now())

        def emails(status):
            response = admin_client.get(invitations_url(organization), {"status": status})
            return [item["email"] for item in data(response)["items"]]

        assert emails("expired") == ["stale@example.com"]
        assert emails("pending") == ["fresh@example.com"]
        assert emails("revoked") == []

    def test_only_the_organizations_own_invitations_are_listed_or_counted(
        self, admin_client, organization, other_organization, invite
    ):
        invite("mine@example.com")
        Invitation.objects.create(
            organization=other_organization,
            email="theirs@example.com",
            expires_at=timezone.now() + timedelta(days=1),
        )
        response = admin_client.get(invitations_url(organization))
        assert [item["email"] for item in data(response)["items"]] == ["mine@example.com"]
        assert data(response)["_meta"]["total_items"] == 1

    def test_the_invitees_list_holds_only_their_open_invitations(
        self, invite, outsider, client_for, other_organization
    ):
        mine = invite(outsider.email)
        invite("someone-else@example.com")
        response = client_for(outsider).get("/api/user/invitations", {"sort": "expires_at"})
        assert [item["uid"] for item in data(response)["items"]] == [str(mine.uid)]
        assert data(response)["_meta"]["total_items"] == 1

    @pytest.mark.parametrize("who", ["admin", "invitee"])
    def test_list_query_count_does_not_grow_with_rows(
        self, who, admin_client, organization, invite, outsider, client_for, make_user
    ):
        client, url = (
            (admin_client, invitations_url(organization))
            if who == "admin"
            else (client_for(outsider), "/api/user/invitations")
        )

        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            return len(captured)

        invite(outsider.email)
        one = queries()
        for number in range(4):
            # Each from another inviter and, for the invitee, another organization.
            home = (
                organization if who == "admin" else Organization.objects.create(name=f"O{number}")
            )
            inviter = make_user(organization=home, role=Role.ADMIN)
            invitation_create(
                organization=home,
                email=f"more{number}@example.com" if who == "admin" else outsider.email,
                role=Role.VIEWER,
                invited_by=inviter,
            )
        assert queries() == one
