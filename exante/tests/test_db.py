"""``conflict_on``: the database decides uniqueness; only the named constraint is a 409."""

import pytest
from django.db import IntegrityError

from entities.models import Membership, Role
from exante.db import conflict_on
from exante.errors import Conflict


@pytest.mark.django_db
def test_named_constraint_becomes_the_conflict(viewer, organization):
    with (
        pytest.raises(Conflict),
        conflict_on(Membership, "membership_user_org_uniq", lambda: Conflict("taken")),
    ):
        Membership.objects.create(user=viewer, organization=organization, role=Role.EDITOR)
    assert Membership.objects.filter(user=viewer).count() == 1


@pytest.mark.django_db
def test_other_integrity_errors_are_re_raised(viewer, organization):
    with (
        pytest.raises(IntegrityError),
        conflict_on(Membership, "some_other_constraint", lambda: Conflict("taken")),
    ):
        Membership.objects.create(user=viewer, organization=organization, role=Role.EDITOR)


@pytest.mark.django_db
def test_a_conflict_leaves_the_outer_transaction_usable(viewer, organization, make_user):
    from django.db import transaction

    with transaction.atomic():
        with (
            pytest.raises(Conflict),
            conflict_on(Membership, "membership_user_org_uniq", lambda: Conflict("taken")),
        ):
            Membership.objects.create(user=viewer, organization=organization)
        other = make_user("other@acme.test", organization=organization)
    assert Membership.objects.filter(user=other).exists()
