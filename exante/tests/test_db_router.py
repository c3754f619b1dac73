"""Reads on a replica with read-your-writes: the router's decisions, the pinning window,
the fallback to the primary, and /readyz."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from exante import db_router
from exante.db_router import (
    REPLICA_DB_ALIAS,
    REPLICA_LAGGING,
    REPLICA_OK,
    REPLICA_UNREACHABLE,
    ReadState,
    ReplicaHealth,
    choose_read_alias,
    pin_user,
    replica_state,
    user_pinned,
)

VALUES = "metrics.metricvalue"


class FakeRequest:
    def __init__(self, user):
        self.user = user


def state_for(user, *, allowed=True, pinned=()):
    return ReadState(
        replica_allowed=allowed, user_pinned=lambda pk: pk in pinned, request=FakeRequest(user)
    )


class Member:
    uid = 7
    is_authenticated = True


def always(answer):
    calls = []

    def check():
        calls.append(1)
        return answer

    check.calls = calls
    return check


# --- Decisions -------------------------------------------------------------------------------


def test_outside_a_request_reads_use_the_primary():
    assert choose_read_alias(VALUES, None, always(True)) == DEFAULT_DB_ALIAS


def test_a_request_that_writes_or_the_admin_reads_from_the_primary():
    assert choose_read_alias(VALUES, state_for(Member(), allowed=False), always(True)) == (
        DEFAULT_DB_ALIAS
    )


def test_an_unpinned_user_reads_values_from_the_replica():
    assert choose_read_alias(VALUES, state_for(Member()), always(True)) == REPLICA_DB_ALIAS


def test_an_anonymous_request_reads_from_the_replica():
    assert choose_read_alias(VALUES, state_for(AnonymousUser()), always(True)) == (REPLICA_DB_ALIAS)


def test_a_user_who_wrote_recently_reads_from_the_primary():
    check = always(True)
    assert choose_read_alias(VALUES, state_for(Member(), pinned={7}), check) == DEFAULT_DB_ALIAS
    assert check.calls == []


@pytest.mark.parametrize(
    "label", ["entities.user", "entities.membership", "entities.apikey", "sessions.session"]
)
def test_who_may_do_what_is_always_read_from_the_primary(label):
    assert choose_read_alias(label, state_for(Member()), always(True)) == DEFAULT_DB_ALIAS


def test_before_the_user_is_known_reads_use_the_primary():
    def load():
        raise AssertionError("the router must not evaluate the session user")

    lazy = SimpleLazyObject(load)
    assert choose_read_alias(VALUES, state_for(lazy), always(True)) == DEFAULT_DB_ALIAS


def test_an_unusable_replica_sends_reads_to_the_primary():
    assert choose_read_alias(VALUES, state_for(Member()), always(False)) == DEFAULT_DB_ALIAS


def test_the_pin_is_looked_up_once_per_request():
    lookups = []
    state = ReadState(
        replica_allowed=True,
        user_pinned=lambda pk: lookups.append(pk) or False,
        request=FakeRequest(Member()),
    )
    for _ in range(3):
        choose_read_alias(VALUES, state, always(True))
    assert lookups == [7]


# --- The pinning window ----------------------------------------------------------------------


@override_settings(REPLICA_PIN_SECONDS=30)
def test_a_write_pins_its_user_and_no_one_else():
    pin_user(41)
    assert user_pinned(41) is True
    assert user_pinned(42) is False


@override_settings(REPLICA_PIN_SECONDS=0)
def test_a_zero_window_pins_no_one():
    pin_user(41)
    assert user_pinned(41) is False


# --- Replica health --------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@override_settings(REPLICA_CHECK_SECONDS=5)
def test_the_replica_is_checked_at_most_once_per_interval():
    check, clock = always(REPLICA_OK), Clock()
    health = ReplicaHealth(check=check, clock=clock)
    assert health.usable() is True
    clock.now += 4
    assert health.usable() is True
    assert len(check.calls) == 1
    clock.now += 1
    assert health.usable() is True
    assert len(check.calls) == 2


@pytest.mark.parametrize("answer", [REPLICA_LAGGING, REPLICA_UNREACHABLE])
def test_a_lagging_or_unreachable_replica_is_not_used(answer):
    assert ReplicaHealth(check=always(answer), clock=Clock()).usable() is False


def unreachable_settings() -> dict:
    settings_dict = dict(connection.settings_dict)
    if connection.vendor == "postgresql":
        # Port 1 on the loopback: nothing listens, so the connection is refused at once.
        settings_dict.update(PORT="1", HOST="127.0.0.1", CONN_MAX_AGE=0)
        settings_dict["OPTIONS"] = {**settings_dict["OPTIONS"], "connect_timeout": 2}
        settings_dict["OPTIONS"].pop("pool", None)
    else:
        settings_dict.update(NAME="/nonexistent-directory/replica.sqlite3")
    return settings_dict


def wrapper(settings_dict):
    """A connection of the default database's backend to ``settings_dict``."""
    return type(connections[DEFAULT_DB_ALIAS])(settings_dict, alias=REPLICA_DB_ALIAS)


@pytest.mark.django_db
def test_an_unreachable_replica_reports_so():
    replica = wrapper(unreachable_settings())
    assert replica_state(replica) == REPLICA_UNREACHABLE


@pytest.mark.django_db
def test_a_database_that_answers_is_an_ok_replica():
    # A primary is never behind itself.
    replica = wrapper(dict(connection.settings_dict))
    try:
        assert replica_state(replica) == REPLICA_OK
    finally:
        replica.close()


# --- Through the API, with a replica configured ----------------------------------------------


@pytest.fixture
def replica_alias(settings, monkeypatch):
    """Configure a ``replica`` alias; the test passes its connection settings."""
    made = []

    def configure(settings_dict):
        settings.DATABASE_REPLICA_URL = "configured-by-the-test"
        monkeypatch.setattr(db_router, "replica_health", ReplicaHealth())
        connections[REPLICA_DB_ALIAS] = wrapper(settings_dict)
        made.append(connections[REPLICA_DB_ALIAS])
        return made[-1]

    yield configure
    for replica in made:
        replica.close()
        del connections[REPLICA_DB_ALIAS]


@pytest.mark.django_db
def test_with_the_replica_unreachable_reads_fall_back_to_the_primary(
    replica_alias, viewer_client, organization
):
    replica_alias(unreachable_settings())
    response = viewer_client.get(f"/api/metrics/values/ORGANIZATION/{organization.uid}")
    assert response.status_code == 200
    assert response.json()["data"]["items"] == []
    assert db_router.replica_health.state == REPLICA_UNREACHABLE


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_replica_gone_since_its_last_check_costs_no_request(
    postgres_only, replica_alias, viewer_client, organization, monkeypatch
):
    replica_alias(unreachable_settings())
    # The last check found the replica well; it stopped since (a refused connection is an
    # unavailable database, a 503, on PostgreSQL).
    health = ReplicaHealth(check=always(REPLICA_OK), clock=Clock())
    monkeypatch.setattr(db_router, "replica_health", health)
    response = viewer_client.get(f"/api/metrics/values/ORGANIZATION/{organization.uid}")
    assert response.status_code == 200
    assert response.json()["data"]["items"] == []
    assert health.state == REPLICA_UNREACHABLE
    assert health.usable() is False


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_replica_without_failing(replica_alias, anon_client):
    replica_alias(unreachable_settings())
    response = anon_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["data"] == {"database": "ok", "replica": "unreachable"}


@pytest.mark.django_db
def test_readyz_reports_a_replica_that_answers(replica_alias, anon_client):
    replica_alias(dict(connection.settings_dict))
    response = anon_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["data"] == {"database": "ok", "replica": "ok"}


@pytest.mark.django_db(transaction=True)
def test_reads_go_to_the_replica_until_the_user_writes(
    replica_alias, client_for, editor, organization, total_ar
):
    replica = replica_alias(dict(connection.settings_dict))
    client = client_for(editor)
    url = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
    with CaptureQueriesContext(replica) as before:
        assert client.get(url).status_code == 200
    assert any("metric" in query["sql"] for query in before.captured_queries)

    today = timezone.now().date().isoformat()
    body = {"metric_uid": "total_ar", "metric_date": today, "value": 5}
    with CaptureQueriesContext(replica) as during:
        assert client.post(url, body, format="json").status_code == 201
    assert during.captured_queries == []

    with CaptureQueriesContext(replica) as after:
        listed = client.get(url)
    assert after.captured_queries == []
    assert [item["value"] for item in listed.json()["data"]["items"]] == [5]
