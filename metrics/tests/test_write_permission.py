"""``writable_entity_uids`` answers a batch exactly as ``can_write_values`` answers each
entity: every caller of ``world`` (roles, a member of two organizations, an outsider, a
user in none, staff, keys with and without ``metrics:write``, a key whose owner was
demoted) against every entity (both organizations and their parties, users of each kind,
the caller itself), plus a uid that names nothing."""

import uuid

import pytest

from entities.models import Organization, Party, User
from entities.permissions import can_write_values, writable_entity_uids

MODELS = {"ORGANIZATION": Organization, "PARTY": Party, "USER": User}


@pytest.mark.django_db
def test_batched_answers_equal_can_write_values_for_every_caller_and_entity(
    world, django_assert_max_num_queries
):
    principals, entities = world
    answers = []
    for name, user in principals.items():
        for context_type, model in MODELS.items():
            uids = [entity.uid for entity in entities[context_type]]
            with django_assert_max_num_queries(1):
                batched = writable_entity_uids(user, model, [*uids, uuid.uuid4()])
            single = {e.uid for e in entities[context_type] if can_write_values(user, e)}
            assert batched == single, (name, context_type)
            answers += [uid in batched for uid in uids]
    # The matrix reaches both answers, and the caller's own values among them.
    assert any(answers) and not all(answers)
    assert principals["loner"].uid in writable_entity_uids(
        principals["loner"], User, [principals["loner"].uid]
    )


@pytest.mark.django_db
def test_no_uids_and_anonymous_callers_write_nothing(world, organization):
    principals, _ = world
    assert writable_entity_uids(principals["staff"], Organization, []) == set()
    assert writable_entity_uids(None, Organization, [organization.uid]) == set()
