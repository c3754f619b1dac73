"""However many identical keyed requests race, the work runs once: fired at once over
separate connections against a live server, one create runs and every other request is
told it is in progress (or, once it has finished, gets its answer replayed)."""

import json

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from entities.models import Membership, Organization, Role, User
from exante.idempotency.models import IdempotencyKey
from metrics.models import MetricDefinition, MetricValue

from .live_race import fire_together

CONCURRENT_REQUESTS = 16


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

    results = fire_together(
        live_server.url,
        [{"path": path, "headers": headers, "body": payload}] * CONCURRENT_REQUESTS,
    )
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
