"""Visibility (``visible_to``) and write rules (``entities.permissions``), defined once and
used by every view: members see their organizations, parties and co-members; staff see
everything; an API key sees only its own organization."""

import pytest

from entities.models import ApiKey, Membership, Organization, Party, Role, User
from entities.permissions import can_manage_organization, can_write_values, role_in

pytestmark = pytest.mark.django_db


def as_key(user, api_key):
    """The user object key authentication returns, loaded fresh as each request does: the
    key (with its membership) rides on it."""
    api_key = ApiKey.objects.select_related("user", "membership").get(pk=api_key.pk)
    user = api_key.user
    user.api_key = api_key
    return user


class TestOrganizationVisibility:
    def test_member_sees_only_own_organizations(self, viewer, organization, other_organization):
        assert list(Organization.objects.visible_to(viewer)) == [organization]

    def test_staff_sees_every_organization(self, staff, organization, other_organization):
        assert set(Organization.objects.visible_to(staff)) == {organization, other_organization}

    def test_anonymous_sees_nothing(self, organization):
        from django.contrib.auth.models import AnonymousUser

        assert not Organization.objects.visible_to(AnonymousUser()).exists()
        assert not Organization.objects.visible_to(None).exists()

    def test_key_sees_only_its_organization(
        self, make_user, organization, other_organization, make_api_key
    ):
        user = make_user(organization=organization, role=Role.ADMIN)
        Membership.objects.create(user=user, organization=other_organization, role=Role.ADMIN)
        api_key, _ = make_api_key(user, other_organization)
        assert list(Organization.objects.visible_to(as_key(user, api_key))) == [other_organization]

    def test_staff_key_is_narrowed_to_its_organization(
        self, staff, organization, other_organization, make_api_key
    ):
        api_key, _ = make_api_key(staff, organization)
        assert list(Organization.objects.visible_to(as_key(staff, api_key))) == [organization]

    def test_key_of_a_former_member_sees_nothing(self, viewer, organization, make_api_key):
        api_key, _ = make_api_key(viewer, organization)
        Membership.objects.filter(user=viewer).delete()
        assert not Organization.objects.visible_to(as_key(viewer, api_key)).exists()


class TestPartyAndUserVisibility:
    def test_parties_follow_their_organization(self, viewer, outsider, party, other_party):
        assert list(Party.objects.visible_to(viewer)) == [party]
        assert list(Party.objects.visible_to(outsider)) == [other_party]

    def test_user_sees_self_and_co_members_only(self, viewer, editor, outsider):
        assert set(User.objects.visible_to(viewer)) == {viewer, editor}
        assert set(User.objects.visible_to(outsider)) == {outsider}

    def test_user_without_organization_sees_only_self(self, make_user, viewer):
        loner = make_user("loner@example.com")
        assert list(User.objects.visible_to(loner)) == [loner]

    def test_user_in_two_organizations_sees_both_once_each(
        self, make_user, viewer, outsider, organization, other_organization
    ):
        both = make_user("both@example.com", organization=organization)
        Membership.objects.create(user=both, organization=other_organization, role=Role.VIEWER)
        visible = list(User.objects.visible_to(both))
        assert sorted(user.email for user in visible) == [
            "both@example.com",
            "outsider@globex.test",
            "viewer@acme.test",
        ]
        assert User.objects.visible_to(both).count() == 3

    def test_staff_key_sees_members_of_its_organization_only(
        self, staff, viewer, outsider, organization, make_api_key
    ):
        api_key, _ = make_api_key(staff, organization)
        assert set(User.objects.visible_to(as_key(staff, api_key))) == {staff, viewer}


class TestWriteValues:
    @pytest.mark.parametrize("role", [Role.EDITOR, Role.ADMIN])
    def test_writers_write_their_organization_and_parties(
        self, make_user, organization, party, role
    ):
        user = make_user(organization=organization, role=role)
        assert can_write_values(user, organization)
        assert can_write_values(user, party)

    def test_viewer_writes_nothing_but_own_values(self, viewer, organization, party, editor):
        assert not can_write_values(viewer, organization)
        assert not can_write_values(viewer, party)
        assert not can_write_values(viewer, editor)
        assert can_write_values(viewer, viewer)

    def test_editor_writes_co_members_values_only(self, editor, viewer, outsider):
        assert can_write_values(editor, viewer)
        assert not can_write_values(editor, outsider)

    def test_outsider_writes_nothing_of_another_organization(self, outsider, organization, party):
        assert not can_write_values(outsider, organization)
        assert not can_write_values(outsider, party)

    def test_staff_writes_everything(self, staff, organization, other_party, viewer):
        assert can_write_values(staff, organization)
        assert can_write_values(staff, other_party)
        assert can_write_values(staff, viewer)

    def test_key_without_metrics_write_cannot_write(self, editor, organization, make_api_key):
        api_key, _ = make_api_key(editor, organization, ["metrics:read"])
        assert not can_write_values(as_key(editor, api_key), organization)

    def test_key_writes_only_inside_its_organization(
        self, make_user, organization, other_organization, party, other_party, make_api_key
    ):
        user = make_user(organization=organization, role=Role.EDITOR)
        Membership.objects.create(user=user, organization=other_organization, role=Role.EDITOR)
        api_key, _ = make_api_key(user, organization, ["metrics:write"])
        acting = as_key(user, api_key)
        assert can_write_values(acting, organization)
        assert can_write_values(acting, party)
        assert not can_write_values(acting, other_organization)
        assert not can_write_values(acting, other_party)

    def test_viewer_key_cannot_write_even_with_no_scopes_given(
        self, viewer, organization, make_api_key
    ):
        api_key, _ = make_api_key(viewer, organization)
        assert not can_write_values(as_key(viewer, api_key), organization)

    def test_demoted_user_key_loses_write_at_once(self, editor, organization, make_api_key):
        api_key, _ = make_api_key(editor, organization, ["metrics:write"])
        Membership.objects.filter(user=editor).update(role=Role.VIEWER)
        assert not can_write_values(as_key(editor, api_key), organization)

    def test_staff_key_has_staff_rights_only_in_its_organization(
        self, staff, organization, other_organization, make_api_key
    ):
        api_key, _ = make_api_key(staff, organization)
        acting = as_key(staff, api_key)
        assert can_write_values(acting, organization)
        assert not can_write_values(acting, other_organization)


class TestManageOrganization:
    def test_only_admins_and_staff_manage(
        self, org_admin, editor, viewer, outsider, staff, organization
    ):
        assert can_manage_organization(org_admin, organization)
        assert can_manage_organization(staff, organization)
        assert not can_manage_organization(editor, organization)
        assert not can_manage_organization(viewer, organization)
        assert not can_manage_organization(outsider, organization)

    def test_admin_key_needs_entities_write(self, org_admin, organization, make_api_key):
        read_only, _ = make_api_key(org_admin, organization, ["entities:read"])
        writer, _ = make_api_key(org_admin, organization, ["entities:write"])
        assert not can_manage_organization(as_key(org_admin, read_only), organization)
        assert can_manage_organization(as_key(org_admin, writer), organization)

    def test_role_in_reads_membership(self, editor, staff, organization, other_organization):
        assert role_in(editor, organization.pk) == Role.EDITOR
        assert role_in(editor, other_organization.pk) is None
        assert role_in(staff, other_organization.pk) == Role.ADMIN
