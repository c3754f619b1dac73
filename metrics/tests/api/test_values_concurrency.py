"""The database decides a race: identical creates fired at once over separate
connections against a live server give exactly one 201 and only 409s besides."""

import json

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from entities.models import Membership, Organization, Role, User
from exante.tests.live_race import fire_together
from metrics.models import MetricDefinition, MetricValue, MetricValueHistory

CONCURRENT_CREATES = 24
CONCURRENT_PATCHES = 12


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_creates_give_one_201_and_409s(postgres_only, live_server):
    organization = Organization.objects.create(name="Race Inc", timezone="UTC")
    user = User.objects.create_user("racer@race.test", "x-password-1")
    Membership.objects.create(user=user, organization=organization, role=Role.EDITOR)
    MetricDefinition.objects.create(uid="race_metric", name="Race", value_type="count")
    token = str(AccessToken.for_user(user))
    path = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
    payload = {"metric_uid": "race_metric", "metric_date": "2026-03-15", "value": 1}

    headers = {"Authorization": f"Bearer {token}"}
    answers = fire_together(
        live_server.url, [{"path": path, "headers": headers, "body": payload}] * CONCURRENT_CREATES
    )
    results = [(status, json.loads(body)) for status, _, body in answers]

    statuses = sorted(status for status, _ in results)
    assert len(statuses) == CONCURRENT_CREATES
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == CONCURRENT_CREATES - 1, statuses
    stored = MetricValue.objects.get()
    created = next(body for status, body in results if status == 201)
    assert created["data"]["uid"] == str(stored.uid)
    for status, body in results:
        if status == 409:
            assert body["code"] == "duplicate_value"
            assert body["data"] == {"uid": str(stored.uid)}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_patches_with_one_if_match_give_one_200_and_412s(postgres_only, live_server):
    organization = Organization.objects.create(name="Race Inc", timezone="UTC")
    user = User.objects.create_user("racer@race.test", "x-password-1")
    Membership.objects.create(user=user, organization=organization, role=Role.EDITOR)
    definition = MetricDefinition.objects.create(uid="race_metric", name="Race", value_type="count")
    value = MetricValue.objects.create(
        metric=definition,
        context_type="ORGANIZATION",
        entity_uid=organization.uid,
        metric_date="2026-03-15",
        value=1,
    )
    token = str(AccessToken.for_user(user))
    headers = {"Authorization": f"Bearer {token}", "If-Match": '"1"'}
    answers = fire_together(
        live_server.url,
        [
            {
                "method": "PATCH",
                "path": f"/api/metrics/values/{value.uid}",
                "headers": headers,
                "body": {"value": 100 + n},
            }
            for n in range(CONCURRENT_PATCHES)
        ],
    )
    results = [(status, json.loads(body)) for status, _, body in answers]
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [412] * (CONCURRENT_PATCHES - 1)
    for status, body in results:
        if status == 412:
            assert (body["code"], body["data"]) == ("precondition_failed", {"version": 2})
    assert MetricValueHistory.objects.filter(value_uid=value.uid).count() == 2
    assert MetricValue.objects.get().version == 2
