"""Who an organization admin may add directly as a member: only users who already share one
of the admin's organizations. Anyone else answers exactly like a uid that does not exist,
so the endpoint neither pulls in another tenant's user nor tells which users exist."""

import uuid

import pytest

from entities.models import Membership, Role
from metrics.models import MetricValue

pytestmark = pytest.mark.django_db


def members_url(organization) -> str:
    return f"/api/organizations/{organization.uid}/members"


@pytest.fixture
def globex_admin(make_user, other_organization):
    return make_user("admin@globex.test", organization=other_organization, role=Role.ADMIN)


@pytest.fixture
def acme_user_value(make_definition, editor):
    """A USER value of Acme's editor, written by an Acme member."""
    definition = make_definition("hours_logged", context_type="USER")
    return MetricValue.objects.create(
        metric=definition,
        context_type="USER",
        entity_uid=editor.uid,
        metric_date="2026-01-05",
        value=12,
    )


class TestForeignUserCannotBePulledIn:
    def test_admin_of_another_organization_gets_the_unknown_user_answer(
        self, client_for, globex_admin, other_organization, editor
    ):
        client = client_for(globex_admin)
        foreign = client.post(
            members_url(other_organization), {"user_uid": str(editor.uid), "role": "viewer"}
        )
        missing_uid = uuid.uuid4()
        missing = client.post(
            members_url(other_organization), {"user_uid": str(missing_uid), "role": "viewer"}
        )
        assert foreign.status_code == 400, foreign.content
        assert missing.status_code == 400
        assert foreign.json()["errors"] == {
            "user_uid": [f"No user with uid {editor.uid} was found."]
        }
        assert missing.json()["errors"] == {
            "user_uid": [f"No user with uid {missing_uid} was found."]
        }
        # Everything but the uid the caller sent is identical.
        assert foreign.json()["message"].replace(str(editor.uid), "?") == missing.json()[
            "message"
        ].replace(str(missing_uid), "?")
        assert not Membership.objects.filter(user=editor, organization=other_organization).exists()

    def test_the_foreign_users_values_stay_out_of_reach(
        self, client_for, globex_admin, other_organization, editor, acme_user_value
    ):
        client = client_for(globex_admin)
        client.post(members_url(other_organization), {"user_uid": str(editor.uid)})
        assert client.get(f"/api/metrics/values/USER/{editor.uid}").status_code == 404
        assert client.get(f"/api/metrics/values/{acme_user_value.uid}").status_code == 404
        assert client.delete(f"/api/metrics/values/{acme_user_value.uid}").status_code == 404
        assert MetricValue.objects.filter(pk=acme_user_value.pk).exists()

    def test_a_user_in_no_organization_is_not_addable_either(
        self, client_for, org_admin, organization, make_user
    ):
        loner = make_user("loner@nowhere.test")
        response = client_for(org_admin).post(
            members_url(organization), {"user_uid": str(loner.uid)}
        )
        assert response.status_code == 400
        assert response.json()["errors"] == {
            "user_uid": [f"No user with uid {loner.uid} was found."]
        }

    def test_through_an_admins_key_only_the_keys_organization_counts(
        self, make_user, organization, other_organization, make_api_key, key_client
    ):
        # The admin shares Globex with the candidate, but the key acts inside Acme only.
        admin = make_user("both@example.test", organization=organization, role=Role.ADMIN)
        Membership.objects.create(user=admin, organization=other_organization, role=Role.VIEWER)
        candidate = make_user("globex-only@example.test", organization=other_organization)
        _, raw = make_api_key(admin, organization)
        response = key_client(raw).post(members_url(organization), {"user_uid": str(candidate.uid)})
        assert response.status_code == 400
        assert "user_uid" in response.json()["errors"]


class TestWhoMayBeAdded:
    def test_admin_adds_a_user_sharing_another_of_the_admins_organizations(
        self, client_for, make_user, organization, other_organization
    ):
        admin = make_user("both@example.test", organization=organization, role=Role.ADMIN)
        Membership.objects.create(user=admin, organization=other_organization, role=Role.VIEWER)
        colleague = make_user("colleague@globex.test", organization=other_organization)
        response = client_for(admin).post(
            members_url(organization), {"user_uid": str(colleague.uid), "role": "editor"}
        )
        assert response.status_code == 201, response.content
        assert Membership.objects.get(user=colleague, organization=organization).role == "editor"

    def test_staff_adds_anyone(self, staff_client, organization, outsider, make_user):
        loner = make_user("loner@nowhere.test")
        for user in (outsider, loner):
            response = staff_client.post(members_url(organization), {"user_uid": str(user.uid)})
            assert response.status_code == 201, response.content
        assert set(
            Membership.objects.filter(organization=organization).values_list(
                "user__email", flat=True
            )
        ) == {outsider.email, loner.email}
