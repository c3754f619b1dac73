"""The database decides a race: identical creates fired at once over separate
connections against a live server give exactly one 201 and only 409s besides."""

import http.client
import json
import threading
from urllib.parse import urlsplit

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from entities.models import Membership, Organization, Role, User
from metrics.models import MetricDefinition, MetricValue, MetricValueHistory

CONCURRENT_CREATES = 24
CONCURRENT_PATCHES = 12


def post_json(
    base_url: str, path: str, token: str, payload: dict, barrier, method="POST", headers=None
) -> tuple[int, dict]:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.connect()  # the TCP connection is open before the barrier lets all go
        barrier.wait()
        connection.request(
            method,
            path,
            body=json.dumps(payload),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token}",
                **(headers or {}),
            },
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


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

    barrier = threading.Barrier(CONCURRENT_CREATES)
    results: list[tuple[int, dict]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker():
        try:
            outcome = post_json(live_server.url, path, token, payload, barrier)
        except BaseException as exc:  # reported below; a thread must not die silently
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENT_CREATES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
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
    barrier = threading.Barrier(CONCURRENT_PATCHES)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def worker(n: int):
        outcome = post_json(
            live_server.url,
            f"/api/metrics/values/{value.uid}",
            token,
            {"value": 100 + n},
            barrier,
            method="PATCH",
            headers={"If-Match": '"1"'},
        )
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CONCURRENT_PATCHES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [412] * (CONCURRENT_PATCHES - 1)
    for status, body in results:
        if status == 412:
            assert (body["code"], body["data"]) == ("precondition_failed", {"version": 2})
    assert MetricValueHistory.objects.filter(value_uid=value.uid).count() == 2
    assert MetricValue.objects.get().version == 2
