"""Fixtures shared by the metrics tests."""

import pytest

from entities.models import ApiKey, Membership, Role, Scope, User


def acting_through(api_key: ApiKey) -> User:
    """The user object key authentication returns (the key, with its membership, on it)."""
    api_key = ApiKey.objects.select_related("user", "membership").get(pk=api_key.pk)
    user = api_key.user
    user.api_key = api_key
    return user


@pytest.fixture
def world(
    make_user,
    make_api_key,
    organization,
    other_organization,
    party,
    other_party,
    viewer,
    editor,
    org_admin,
    outsider,
    staff,
):
    """Acme (viewer, editor, admin, a member of both) and Globex (outsider, the member of
    both as a viewer), a user in no organization, staff; keys of every kind."""
    both = make_user("both@example.test", organization=organization, role=Role.EDITOR)
    Membership.objects.create(user=both, organization=other_organization, role=Role.VIEWER)
    loner = make_user("loner@example.test")
    keys = {
        "viewer_key": make_api_key(viewer, organization)[0],
        "editor_key": make_api_key(editor, organization)[0],
        "editor_read_key": make_api_key(editor, organization, [Scope.METRICS_READ])[0],
        "admin_key": make_api_key(org_admin, organization)[0],
        "both_globex_key": make_api_key(both, other_organization)[0],
        "staff_key": make_api_key(staff, other_organization)[0],
    }
    principals = {
        "viewer": viewer,
        "editor": editor,
        "org_admin": org_admin,
        "both": both,
        "outsider": outsider,
        "loner": loner,
        "staff": staff,
        **{name: acting_through(key) for name, key in keys.items()},
    }
    # A demotion after the key was made narrows the key at once.
    Membership.objects.filter(user=org_admin, organization=organization).update(role=Role.VIEWER)
    principals["demoted_admin_key"] = acting_through(keys["admin_key"])
    Membership.objects.filter(user=org_admin, organization=organization).update(role=Role.ADMIN)
    principals["admin_key"] = acting_through(keys["admin_key"])
    entities = {
        "ORGANIZATION": [organization, other_organization],
        "PARTY": [party, other_party],
        "USER": [viewer, editor, org_admin, both, outsider, loner, staff],
    }
    return principals, entities
