"""The admin's invitation pages: staff read every invitation with its status as of now and
revoke pending ones; nobody adds or deletes one here."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from entities.models import Invitation, InvitationStatus, Role
from entities.services import invitation_create


@pytest.fixture
def invitations(organization, other_organization, org_admin):
    """A pending, an expired and a declined invitation."""
    pending = invitation_create(
        organization=organization,
        email="pending@example.com",
        role=Role.EDITOR,
        invited_by=org_admin,
    )
    expired = invitation_create(
        organization=organization, email="expired@example.com", role=Role.VIEWER, invited_by=None
    )
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    declined = invitation_create(
        organization=other_organization,
        email="declined@example.com",
        role=Role.VIEWER,
        invited_by=None,
    )
    Invitation.objects.filter(pk=declined.pk).update(status=InvitationStatus.DECLINED)
    return {"pending": pending, "expired": expired, "declined": declined}


CHANGELIST = "admin:entities_invitation_changelist"


def test_changelist_shows_organization_email_role_status_and_dates(
    superuser_client, invitations, organization
):
    response = superuser_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    rows = {obj.email: obj for obj in response.context["cl"].result_list}
    assert set(rows) == {"pending@example.com", "expired@example.com", "declined@example.com"}
    html = response.content.decode()
    for text in (organization.name, "pending@example.com", "Editor", "expired", "declined"):
        assert text in html


@pytest.mark.parametrize("status", ["pending", "expired", "declined"])
def test_status_filter_reads_expiry(superuser_client, invitations, status):
    response = superuser_client.get(reverse(CHANGELIST), {"status": status})
    assert [obj.email for obj in response.context["cl"].result_list] == [f"{status}@example.com"]


def test_change_page_is_read_only_and_nothing_is_added_or_deleted(superuser_client, invitations):
    invitation = invitations["pending"]
    change = reverse("admin:entities_invitation_change", args=[invitation.pk])
    assert superuser_client.get(change).status_code == 200
    assert superuser_client.get(reverse("admin:entities_invitation_add")).status_code == 403
    delete = reverse("admin:entities_invitation_delete", args=[invitation.pk])
    assert superuser_client.get(delete).status_code == 403


def test_revoke_action_revokes_pending_ones_only(superuser_client, invitations):
    response = superuser_client.post(
        reverse(CHANGELIST),
        {
            "action": "revoke",
            "_selected_action": [invitation.pk for invitation in invitations.values()],
            "index": "0",
        },
    )
    assert response.status_code == 302
    statuses = dict(Invitation.objects.values_list("email", "status"))
    assert statuses == {
        "pending@example.com": InvitationStatus.REVOKED,
        "expired@example.com": InvitationStatus.REVOKED,
        "declined@example.com": InvitationStatus.DECLINED,
    }


def test_analyst_cannot_see_invitations(analyst_client, invitations):
    assert analyst_client.get(reverse(CHANGELIST)).status_code == 403
