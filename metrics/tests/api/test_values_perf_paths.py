"""The fast paths of the value create, each proven against the slow one it replaces:

- the caller's role fetched with the entity gives ``can_write_values`` the same answer as
  its own query, for every role, key, scope and context;
- a create is one statement with a JWT (the key lookup and one with an API key);
- the order of answers (404, 400, 403, 409) holds although the body is read before
  the entity, and a definition changed behind the ORM's back is seen by the next request;
- on PostgreSQL the create's statement is prepared on the connection, and its plan holds
  no answer: a definition deactivated or a role lost refuses the next create.
"""

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from entities.models import Role, Scope
from entities.permissions import NOT_FETCHED, can_write_values
from metrics import selectors
from metrics.models import MetricDefinition, MetricValue
from metrics.services import EntityRef
from metrics.tests.api.test_values_queries import real_queries

CONTEXTS = ("ORGANIZATION", "PARTY", "USER")


def test_prefetched_role_answers_like_the_plain_rule_for_every_caller_and_entity(
    world, total_ar, django_assert_num_queries
):
    principals, entities = world
    checked = visible = writable = 0
    for name, user in principals.items():
        for context_type in CONTEXTS:
            for plain_entity in entities[context_type]:
                found = selectors.entity_get(
                    context_type=context_type, entity_uid=plain_entity.uid, user=user
                )
                scope = selectors.value_create_scope(
                    context_type=context_type,
                    entity_uid=plain_entity.uid,
                    user=user,
                    metric_uid=total_ar.uid,
                )
                label = (name, context_type, str(plain_entity))
                assert (scope is None) == (found is None), label
                checked += 1
                if scope is None:
                    continue
                visible += 1
                assert scope.entity.pk == plain_entity.pk, label
                assert scope.definition.pk == total_ar.pk
                expected = can_write_values(user, plain_entity)
                with django_assert_num_queries(0):
                    answer = can_write_values(user, scope.entity, role=scope.role)
                assert answer == expected, label
                writable += expected
    # The matrix really covers both answers and both visibilities.
    assert checked == len(principals) * 11
    assert 0 < writable < visible < checked


def test_prefetched_role_is_only_read_where_the_rule_would_query(world, organization, party):
    principals, _ = world
    # Staff, a key inside its organization and a user writing their own values are decided
    # before any role: a wrong role passed in cannot change those answers.
    assert can_write_values(principals["staff"], organization, role=None)
    assert can_write_values(principals["editor_key"], party, role=None)
    assert not can_write_values(principals["editor_read_key"], organization, role=Role.ADMIN)
    assert can_write_values(principals["viewer"], principals["viewer"], role=None)
    # Where the rule would query, the role decides, as its query's answer would.
    assert can_write_values(principals["viewer"], organization, role=Role.EDITOR)
    assert not can_write_values(principals["editor"], organization, role=Role.VIEWER)
    assert not can_write_values(principals["editor"], organization, role=None)
    assert can_write_values(principals["editor"], organization, role=NOT_FETCHED)


@pytest.mark.parametrize("context_type", CONTEXTS)
def test_scope_loads_what_a_create_reads(world, total_ar, context_type, django_assert_num_queries):
    principals, entities = world
    entity = entities[context_type][0]
    scope = selectors.value_create_scope(
        context_type=context_type,
        entity_uid=entity.uid,
        user=principals["staff"],
        metric_uid=total_ar.uid,
    )
    with django_assert_num_queries(0):
        ref = EntityRef.of(context_type, scope.entity)
        definition = scope.definition
        facts = (definition.uid, definition.name, definition.context_type, definition.is_active)
        facts += (definition.value_type, definition.storage_unit, definition.period_definition)
    assert ref == EntityRef.of(context_type, entity)
    assert facts == (
        total_ar.uid,
        total_ar.name,
        total_ar.context_type,
        total_ar.is_active,
        total_ar.value_type,
        total_ar.storage_unit,
        total_ar.period_definition,
    )
    # Columns left out load on access, with their stored values.
    assert scope.entity.is_active is True
    assert scope.definition.is_snapshot is True


def test_unknown_metric_still_returns_the_entity(world, organization):
    scope = selectors.value_create_scope(
        context_type="ORGANIZATION",
        entity_uid=organization.uid,
        user=world[0]["editor"],
        metric_uid="no_such_metric",
    )
    assert scope.entity.pk == organization.pk and scope.definition is None


# --- Through the API: the order of answers -------------------------------------------------


def url(context_type: str, entity_uid) -> str:
    return f"/api/metrics/values/{context_type}/{entity_uid}"


def body(definition: MetricDefinition, **fields) -> dict:
    return {"metric_uid": definition.uid, "metric_date": "2026-03-15", "value": 7, **fields}


def post_raw(client, path: str, raw: bytes, content_type: str = "application/json"):
    return client.generic("POST", path, raw, content_type=content_type)


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b'{"metric_uid": ', "application/json"),  # malformed JSON
        (b'{"junk": 1}', "application/json"),  # unknown field, missing fields
        (json.dumps({"x": "y" * 70_000}).encode(), "application/json"),  # over 64 KiB
        (b"metric_uid=total_ar", "application/x-www-form-urlencoded"),  # unsupported type
    ],
)
def test_a_bad_body_for_an_unknown_or_invisible_entity_is_404(
    editor_client, other_organization, total_ar, raw, content_type
):
    for entity_uid in (uuid.uuid4(), other_organization.uid):
        response = post_raw(editor_client, url("ORGANIZATION", entity_uid), raw, content_type)
        assert response.status_code == 404, response.content
        assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b'{"metric_uid": ', "application/json", 400),
        (json.dumps({"x": "y" * (1024 * 1024)}).encode(), "application/json", 413),
        (b"metric_uid=total_ar", "application/x-www-form-urlencoded", 415),
    ],
)
def test_a_bad_body_for_a_visible_entity_keeps_its_own_answer(
    viewer_client, organization, total_ar, raw, content_type, status
):
    response = post_raw(viewer_client, url("ORGANIZATION", organization.uid), raw, content_type)
    assert response.status_code == status, response.content


def test_read_only_callers_get_every_400_before_the_403(
    viewer_client, key_client, make_api_key, editor, organization, total_ar, make_definition
):
    party_metric = make_definition("party_dso", context_type="PARTY")
    retired = make_definition("retired", is_active=False)
    _, raw_key = make_api_key(editor, organization, [Scope.METRICS_READ])
    for client in (viewer_client, key_client(raw_key)):
        path = url("ORGANIZATION", organization.uid)
        for bad, field in (
            ({"metric_uid": "nope"}, "metric_uid"),
            ({"metric_uid": party_metric.uid}, "metric_uid"),
            ({"metric_uid": retired.uid}, "metric_uid"),
            ({"value": "abc"}, "value"),
        ):
            response = client.post(path, body(total_ar, **bad))
            assert response.status_code == 400, (bad, response.content)
            assert list(response.json()["errors"]) == [field]
        assert client.post(path, body(total_ar)).status_code == 403
    assert not MetricValue.objects.exists()


def test_duplicate_is_still_409_after_the_403_check(editor_client, viewer_client, organization):
    definition = MetricDefinition.objects.create(uid="dso", name="DSO", value_type="days")
    path = url("ORGANIZATION", organization.uid)
    first = editor_client.post(path, body(definition))
    assert first.status_code == 201
    assert viewer_client.post(path, body(definition)).status_code == 403
    again = editor_client.post(path, body(definition))
    assert again.status_code == 409
    assert again.json()["data"]["uid"] == first.json()["data"]["uid"]


def test_a_definition_changed_behind_the_orm_is_seen_by_the_next_create(
    editor_client, organization
):
    definition = MetricDefinition.objects.create(uid="dso", name="DSO", value_type="days")
    path = url("ORGANIZATION", organization.uid)
    assert editor_client.post(path, body(definition)).status_code == 201
    # ``update()`` sends no signal and leaves ``updated_at``: nothing may be cached.
    MetricDefinition.objects.filter(pk=definition.pk).update(is_active=False)
    refused = editor_client.post(path, body(definition, metric_date="2026-03-16"))
    assert refused.status_code == 400
    assert "inactive" in refused.json()["errors"]["metric_uid"][0]
    MetricDefinition.objects.filter(pk=definition.pk).update(is_active=True, value_type="count")
    fractional = editor_client.post(path, body(definition, metric_date="2026-03-16", value=1.5))
    assert fractional.status_code == 400
    assert list(fractional.json()["errors"]) == ["value"]


# --- Through the API: cost and answers ---------------------------------------------------------


@pytest.mark.parametrize("context_type", CONTEXTS)
@pytest.mark.parametrize("caller", ["editor", "staff"])
def test_create_with_a_jwt_is_one_statement(
    world, make_definition, client_for, caller, context_type
):
    principals, entities = world
    definition = make_definition("some_metric", context_type=context_type)
    entity = {"USER": principals["editor"]}.get(context_type) or entities[context_type][0]
    client = client_for(principals[caller])
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url(context_type, entity.uid), body(definition))
    assert response.status_code == 201, response.content
    queries = real_queries(captured)
    # No query to authenticate: the INSERT reads the user, the entity, the definition and
    # the caller's role, and decides the conflict.
    assert len(queries) == 1, queries
    assert queries[0].upper().startswith("INSERT")


@pytest.mark.parametrize("context_type", CONTEXTS)
def test_create_with_an_api_key_is_the_key_lookup_and_one_statement(
    world, organization, make_definition, key_client, make_api_key, context_type
):
    principals, entities = world
    definition = make_definition("some_metric", context_type=context_type)
    entity = {"USER": principals["editor"]}.get(context_type) or entities[context_type][0]
    client = key_client(make_api_key(principals["editor"], organization)[1])
    # The first request stamps the key's last use.
    assert client.post(url(context_type, entity.uid), body(definition)).status_code == 201
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            url(context_type, entity.uid), body(definition, metric_date="2026-03-17")
        )
    assert response.status_code == 201, response.content
    queries = real_queries(captured)
    assert len(queries) == 2, queries
    assert queries[-1].upper().startswith("INSERT")


def test_location_is_the_value_path(editor_client, organization, total_ar):
    response = editor_client.post(url("ORGANIZATION", organization.uid), body(total_ar))
    uid = response.json()["data"]["uid"]
    assert response["Location"] == f"http://testserver{reverse('metric-value-detail', args=[uid])}"


def test_the_prepared_create_statement_still_decides_on_the_rows_of_the_moment(
    postgres_only, editor, editor_client, organization
):
    definition = MetricDefinition.objects.create(uid="dso", name="DSO", value_type="days")
    path = url("ORGANIZATION", organization.uid)
    for day in range(1, 7):
        response = editor_client.post(path, body(definition, metric_date=f"2026-03-0{day}"))
        assert response.status_code == 201, response.content
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements "
            "WHERE statement LIKE 'INSERT INTO \"metrics_metricvalue\"%%'"
        )
        assert cursor.fetchone() == (1,)
    # A prepared plan holds no answer: deactivation and a lost role refuse the next create.
    MetricDefinition.objects.filter(pk=definition.pk).update(is_active=False)
    refused = editor_client.post(path, body(definition, metric_date="2026-03-07"))
    assert refused.status_code == 400
    assert list(refused.json()["errors"]) == ["metric_uid"]
    MetricDefinition.objects.filter(pk=definition.pk).update(is_active=True)
    editor.memberships.update(role=Role.VIEWER)
    assert editor_client.post(path, body(definition, metric_date="2026-03-08")).status_code == 403
