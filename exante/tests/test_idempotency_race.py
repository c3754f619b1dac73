"""However many identical keyed requests race, the work runs once: fired at once over
separate connections against a live server, one create runs and every other request is
told it is in progress (or, once it has finished, gets its answer replayed)."""

import http.client
import json
import threading
from urllib.parse import urlsplit

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from entities.models import Membership, Organization, Role, User
from exante.idempotency.models import IdempotencyKey
from metrics.models import MetricDefinition, MetricValue

CONCURRENT_REQUESTS = 16


def post(base_url: str, path: str, headers: dict, payload: dict, barrier):
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.connect()  # the TCP connection is open before the barrier lets all go
        barrier.wait()
        connection.request("POST", path, body=json.dumps(payload), headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_keyed_creates_run_once(postgres_only, live_server):
    organization = Organization.objects.create(name="Race Inc", timezone="UTC")
    user = User.objects.create_user("racer@race.test", "x-password-1")
    Membership.objects.create(user=user, organization=organization, role=Role.EDITOR)
    MetricDefinition.objects.create(uid="race_metric", name="Race", value_type="count")
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {AccessToken.for_user(user)}",
        "Idempotency-Key": "race-1",
    }
    path = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
    payload = {"metric_uid": "race_metric", "metric_date": "2026-03-15", "value": 1}

    barrier = threading.Barrier(CONCURRENT_REQUESTS)
    results, errors = [], []
    lock = threading.Lock()

    def worker():
        try:
            outcome = post(live_server.url, path, headers, payload, barrier)
        except BaseException as exc:  # reported below; a thread must not die silently
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENT_REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert len(results) == CONCURRENT_REQUESTS
    stored = MetricValue.objects.get()
    ran = [
        body
        for status, head, body in results
        if status == 201 and "Idempotent-Replayed" not in head
    ]
    assert len(ran) == 1
    assert json.loads(ran[0])["data"]["uid"] == str(stored.uid)
    for status, head, body in results:
        if status == 201:
            assert body == ran[0]
        else:
            assert status == 409, body
            assert json.loads(body)["code"] == "idempotency_in_progress"
            assert head["Retry-After"] == "1"
    row = IdempotencyKey.objects.get()
    assert (row.status_code, bytes(row.body)) == (201, ran[0])
