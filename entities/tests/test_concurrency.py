"""Races decided by the database (PostgreSQL): concurrent duplicate creates get exactly one
success and 409s for the rest; concurrent demotions never leave an organization without an
admin."""

import threading

import pytest
from django.db import connection

from entities import services
from entities.exceptions import DuplicateEmail, DuplicateMembership, DuplicatePartyRef, LastAdmin
from entities.models import Membership, Organization, Party, Role, User

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 6


def race(work, count: int = THREADS) -> list[object]:
    """Run ``work(n)`` in ``count`` threads released together; return results/exceptions."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = work(n)
        except Exception as exc:
            results[n] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_duplicate_emails_one_wins(postgres_only):
    results = race(
        lambda n: services.user_create(
            email="Same@Example.com" if n % 2 else "same@example.com",
            password="a-long-enough-password-1",
        )
    )
    assert sum(isinstance(r, User) for r in results) == 1, results
    assert all(isinstance(r, (User, DuplicateEmail)) for r in results), results
    assert User.objects.filter(email="same@example.com").count() == 1


def test_concurrent_duplicate_party_refs_one_wins(postgres_only):
    organization = Organization.objects.create(name="Acme")
    results = race(
        lambda n: services.party_create(organization=organization, name=f"P{n}", external_ref="R")
    )
    assert sum(isinstance(r, Party) for r in results) == 1, results
    assert all(isinstance(r, (Party, DuplicatePartyRef)) for r in results), results


def test_concurrent_duplicate_memberships_one_wins(postgres_only):
    organization = Organization.objects.create(name="Acme")
    user = User.objects.create_user("m@example.com", "x-long-password-9")
    results = race(
        lambda n: services.membership_create(organization=organization, user=user, role="viewer")
    )
    assert sum(isinstance(r, Membership) for r in results) == 1, results
    assert all(isinstance(r, (Membership, DuplicateMembership)) for r in results), results


def test_concurrent_demotions_leave_one_admin(postgres_only):
    organization = Organization.objects.create(name="Acme")
    admins = []
    for n in range(2):
        user = User.objects.create_user(f"a{n}@example.com", "x-long-password-9")
        admins.append(Membership.objects.create(user=user, organization=organization, role="admin"))

    def demote(n: int):
        membership = Membership.objects.get(pk=admins[n].pk)
        return services.membership_update(membership=membership, role=Role.VIEWER)

    for _ in range(5):
        Membership.objects.filter(organization=organization).update(role=Role.ADMIN)
        results = race(demote, count=2)
        assert sum(isinstance(r, LastAdmin) for r in results) == 1, results
        assert Membership.objects.filter(organization=organization, role=Role.ADMIN).count() == 1
