"""The fast paths of the value create, each proven against the slow one it replaces:

- the caller's role fetched with the entity gives ``can_write_values`` the same answer as
  its own query, for every role, key, scope and context;
- the create statement compiled once per caller shape is the very SQL (and parameters) a
  fresh compile of ``value_create_queryset`` gives for that caller, and compiling refuses a
  statement that would not be reusable;
- the INSERT built once is Django's own INSERT for the same value;
- the order of answers (404, 400, 403, 409) holds although the body is read before
  the entity, and a definition changed behind the ORM's back is seen by the next request.
"""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import signals
from django.db.models.sql import InsertQuery
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from entities.models import Role, Scope, User
from entities.permissions import NOT_FETCHED, can_write_values
from metrics import selectors, services
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


def shapes(world):
    """One caller of each shape the statement is compiled for."""
    principals, _ = world
    return {
        "member": principals["editor"],
        "staff": principals["staff"],
        "member_key": principals["editor_key"],
        "staff_key": principals["staff_key"],
    }


@pytest.mark.parametrize("context_type", CONTEXTS)
def test_compiled_statement_is_a_fresh_compile_for_every_caller(world, context_type):
    _, entities = world
    entity = entities[context_type][0]
    for name, user in {**shapes(world), **world[0]}.items():
        database, compiled, params = selectors.create_scope_statement(
            context_type=context_type, entity_uid=entity.uid, user=user, metric_uid="dso"
        )
        fresh = selectors.value_create_queryset(
            context_type=context_type, entity_uid=entity.uid, user=user, metric_uid="dso"
        )
        sql, fresh_params = fresh.query.get_compiler(connection=database).as_sql()
        assert rendered(database, compiled.sql, params) == rendered(database, sql, fresh_params)
        if database.vendor == "postgresql":
            # Only the caller's values are bound; the constants are in the text.
            assert len(params) < len(fresh_params), name
        else:
            assert (compiled.sql, params) == (sql, list(fresh_params)), name


def rendered(database, sql: str, params) -> str | tuple:
    """The statement as the database receives it (PostgreSQL: with the values quoted in,
    as client-side binding does)."""
    if database.vendor == "postgresql":
        return database.ops.compose_sql(sql, params)
    return sql, list(params)


def test_compiling_refuses_a_statement_that_reads_more_than_the_shape(
    world, monkeypatch, organization
):
    original = selectors.visible_entities

    def reads_the_email(context_type, user):
        assert user.email is not None
        return original(context_type, user)

    monkeypatch.setattr(selectors, "_compiled_create_scopes", {})
    monkeypatch.setattr(selectors, "visible_entities", reads_the_email)
    with pytest.raises(User.DoesNotExist):
        selectors.value_create_scope(
            context_type="ORGANIZATION",
            entity_uid=organization.uid,
            user=world[0]["editor"],
            metric_uid="dso",
        )


def test_compiling_refuses_a_statement_with_an_inlined_argument(world, monkeypatch, organization):
    original = selectors.visible_entities

    def inlines_the_user(context_type, user):
        return original(context_type, user).extra(where=[f"{user.pk} = {user.pk}"])

    monkeypatch.setattr(selectors, "_compiled_create_scopes", {})
    monkeypatch.setattr(selectors, "visible_entities", inlines_the_user)
    with pytest.raises(RuntimeError, match="does not bind its arguments plainly"):
        selectors.value_create_scope(
            context_type="ORGANIZATION",
            entity_uid=organization.uid,
            user=world[0]["editor"],
            metric_uid="dso",
        )


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
@pytest.mark.parametrize("caller", ["editor", "staff", "editor_key"])
def test_create_is_three_statements(
    world, organization, make_definition, key_client, client_for, make_api_key, caller, context_type
):
    principals, entities = world
    definition = make_definition("some_metric", context_type=context_type)
    entity = {"USER": principals["editor"]}.get(context_type) or entities[context_type][0]
    if caller == "editor_key":
        client = key_client(make_api_key(principals["editor"], organization)[1])
    else:
        client = client_for(principals[caller])
    # The first create compiles the statements (and stamps the key's last use).
    assert client.post(url(context_type, entity.uid), body(definition)).status_code == 201
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            url(context_type, entity.uid), body(definition, metric_date="2026-03-17")
        )
    assert response.status_code == 201, response.content
    queries = real_queries(captured)
    # authentication, the entity with its visibility, the caller's role and the
    # definition, the INSERT
    assert len(queries) == 3, queries
    assert queries[-1].upper().startswith("INSERT")


def test_location_is_reverse_under_every_script_prefix(editor_client, organization, total_ar):
    from django.urls import get_script_prefix, set_script_prefix

    from metrics.api.views import _value_path

    response = editor_client.post(url("ORGANIZATION", organization.uid), body(total_ar))
    uid = response.json()["data"]["uid"]
    assert response["Location"] == f"http://testserver{reverse('metric-value-detail', args=[uid])}"
    before = get_script_prefix()
    try:
        for prefix in ("/x/", "/deep/er/", before):
            set_script_prefix(prefix)
            for value_uid in (uid, uuid.uuid4()):
                expected = reverse("metric-value-detail", kwargs={"value_uid": value_uid})
                assert _value_path(value_uid) == expected
                assert expected.startswith(prefix)
    finally:
        set_script_prefix(before)


# --- The INSERT built once -------------------------------------------------------------------


def built_value(definition, organization, day: int) -> MetricValue:
    return services.metric_value_build(
        definition=definition,
        entity=EntityRef.of("ORGANIZATION", organization),
        metric_date=datetime(2026, 3, day, tzinfo=UTC).date(),
        value=Decimal("12.5"),
        metadata={"rate": Decimal("0.25"), "tags": ["a"]},
        batch_id=uuid.uuid4(),
    )


def test_insert_is_djangos_own_statement(organization, make_definition, monkeypatch):
    definition = make_definition("dso", value_type="days")
    services.metric_value_save_new(built_value(definition, organization, 1))  # warms the cache
    frozen = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    monkeypatch.setattr("django.utils.timezone.now", lambda: frozen)
    ours = built_value(definition, organization, 2)
    theirs = MetricValue(
        **{f.attname: getattr(ours, f.attname) for f in MetricValue._meta.concrete_fields}
    )
    sql, params = services.insert_statement(ours, connection.alias)
    query = InsertQuery(MetricValue)
    query.insert_values(MetricValue._meta.local_concrete_fields, [theirs])
    [(django_sql, django_params)] = query.get_compiler(connection=connection).as_sql()
    assert sql == django_sql
    assert [str(p) for p in params] == [str(p) for p in django_params]
    assert ours.created_at == ours.updated_at == frozen


def test_saved_value_reads_back_as_built(organization, make_definition):
    definition = make_definition("dso", value_type="days")
    for day in (1, 2):  # the first INSERT compiles, the second reuses the text
        built = built_value(definition, organization, day)
        services.metric_value_save_new(built)
        assert not built._state.adding
        stored = MetricValue.objects.get(pk=built.pk)
        for field in MetricValue._meta.concrete_fields:
            assert getattr(stored, field.attname) == getattr(built, field.attname), field.name


def test_save_receivers_still_run(organization, make_definition):
    definition = make_definition("dso", value_type="days")
    seen = []

    def receiver(sender, instance, created, **kwargs):
        seen.append((instance.pk, created))

    signals.post_save.connect(receiver, sender=MetricValue)
    try:
        built = built_value(definition, organization, 3)
        services.metric_value_save_new(built)
    finally:
        signals.post_save.disconnect(receiver, sender=MetricValue)
    assert seen == [(built.pk, True)]
    assert MetricValue.objects.filter(pk=built.pk).exists()


def test_duplicate_through_the_insert_is_a_conflict(organization, make_definition):
    definition = make_definition("dso", value_type="days")
    first = built_value(definition, organization, 4)
    services.metric_value_save_new(first)
    with pytest.raises(services.DuplicateValue) as raised:
        services.metric_value_save_new(built_value(definition, organization, 4))
    assert raised.value.data == {"uid": str(first.pk)}


# --- The body serializer with its fields built once per thread ------------------------------

BODIES = [
    {"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 7},
    {
        "metric_uid": "total_ar",
        "metric_date": "2026-03-01",
        "time_unit": "month",
        "value": "12.5",
        "timezone": None,
        "_metadata": {"a": [1, 2]},
    },
    {"metric_uid": "total_ar", "metric_date": "2026-02-30", "value": 7},
    {"metric_uid": 5, "metric_date": 20260315, "value": None, "time_unit": "week"},
    {"metric_uid": "x" * 65, "metric_date": "15/03/2026", "junk": True},
    {"value": 1},
    {},
    [],
    None,
    "a string",
    {"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 7, "timezone": 3},
]


def test_reused_fields_validate_exactly_like_a_fresh_serializer():
    from metrics.api.views import _create_body
    from metrics.fields import MetricValueCreateSerializer

    # Twice over, so every body also follows every other one on the same fields.
    for data in BODIES + BODIES:
        fresh = MetricValueCreateSerializer(data=data)
        reused = _create_body(data)
        assert reused.is_valid() == fresh.is_valid(), data
        assert reused.errors == fresh.errors, data
        assert dict(reused.validated_data) == dict(fresh.validated_data), data
    first, second = _create_body(BODIES[0]), _create_body(BODIES[2])
    assert first.is_valid() and not second.is_valid()
    assert first.fields is second.fields  # built once for the thread
    assert first.validated_data["metric_date"].day == 15 and first.errors == {}
