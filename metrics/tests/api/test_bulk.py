"""``POST /api/metrics/values/bulk``."""

import uuid
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from entities.models import Membership, Organization, Role
from metrics.models import MetricValue

URL = "/api/metrics/values/bulk"


def item(entity, metric="total_ar", day="2026-03-01", value=100, **extra):
    context = extra.pop("context_type", "ORGANIZATION")
    return {
        "context_type": context,
        "entity_uid": str(entity.uid),
        "metric_uid": metric,
        "metric_date": day,
        "value": value,
        **extra,
    }


def days(entity, count, start=date(2026, 1, 1), **extra):
    return [
        item(entity, day=(start + timedelta(days=n)).isoformat(), value=n, **extra)
        for n in range(count)
    ]


@pytest.fixture
def party_metric(make_definition):
    return make_definition("party_total_ar", context_type="PARTY", value_type="currency")


@pytest.fixture
def count_metric(make_definition):
    return make_definition("open_invoices", value_type="count")


@pytest.mark.django_db
def test_valid_items_are_created_with_one_batch_id(editor_client, organization, total_ar):
    response = editor_client.post(URL, {"items": days(organization, 3)}, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["counts"] == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "error": 0,
        "total": 3,
    }
    assert [r["index"] for r in data["results"]] == [0, 1, 2]
    assert {r["status"] for r in data["results"]} == {"created"}
    stored = MetricValue.objects.order_by("metric_date")
    assert [str(v.uid) for v in stored] == [r["uid"] for r in data["results"]]
    assert {str(v.batch_id) for v in stored} == {data["batch_id"]}
    # The organization's timezone is the default, as for a single create.
    assert {v.timezone for v in stored} == {"America/Los_Angeles"}


@pytest.mark.django_db
def test_error_mode_rejects_the_whole_call_reporting_every_bad_item(
    editor_client, organization, total_ar
):
    items = days(organization, 3)
    items[1]["value"] = "12.5"  # cents must be whole
    items[2]["metric_date"] = "2026-02-30"
    response = editor_client.post(URL, {"items": items}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert set(body["errors"]) == {"items.1.value", "items.2.metric_date"}
    results = body["data"]["results"]
    assert [r["status"] for r in results] == ["skipped", "error", "error"]
    assert body["data"]["written"] is False and body["data"]["batch_id"] is None
    assert not MetricValue.objects.exists()


@pytest.mark.django_db
def test_error_mode_with_only_conflicts_is_409_with_existing_uids(
    editor_client, organization, total_ar
):
    first = editor_client.post(URL, {"items": days(organization, 1)}, format="json")
    existing_uid = first.json()["data"]["results"][0]["uid"]
    response = editor_client.post(URL, {"items": days(organization, 2)}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "duplicate_value"
    assert body["errors"] == {"items.0.metric_date": ["A value for this date already exists."]}
    assert body["data"]["results"][0]["uid"] == existing_uid
    assert MetricValue.objects.count() == 1


@pytest.mark.django_db
def test_skip_mode_writes_good_items_and_reports_bad_ones(editor_client, organization, total_ar):
    editor_client.post(URL, {"items": days(organization, 1)}, format="json")
    items = [*days(organization, 2), item(organization, value=True, day="2026-05-01")]
    response = editor_client.post(URL, {"items": items, "on_conflict": "skip"}, format="json")
    assert response.status_code == 200
    results = response.json()["data"]["results"]
    assert [r["status"] for r in results] == ["skipped", "created", "error"]
    assert results[2]["errors"]["value"] == ["Enter a number, not True."]
    assert MetricValue.objects.count() == 2


@pytest.mark.django_db
def test_update_of_identical_value_is_unchanged_and_keeps_updated_at(
    editor_client, organization, total_ar
):
    editor_client.post(URL, {"items": days(organization, 2)}, format="json")
    before = {v.uid: v.updated_at for v in MetricValue.objects.all()}
    items = days(organization, 2)
    items[1]["value"] = 999
    response = editor_client.post(URL, {"items": items, "on_conflict": "update"}, format="json")
    results = response.json()["data"]["results"]
    assert [r["status"] for r in results] == ["unchanged", "updated"]
    after = {v.uid: v for v in MetricValue.objects.all()}
    unchanged_uid = uuid.UUID(results[0]["uid"])
    assert after[unchanged_uid].updated_at == before[unchanged_uid]
    assert after[uuid.UUID(results[1]["uid"])].value == 999
    # The updated row keeps the batch id of the call that created it.
    first_batch = {v.batch_id for v in after.values()}
    assert len(first_batch) == 1


@pytest.mark.django_db
def test_repeated_key_in_one_call_is_applied_in_order(editor_client, organization, total_ar):
    items = [item(organization, value=1), item(organization, value=2), item(organization, value=2)]
    response = editor_client.post(URL, {"items": items, "on_conflict": "update"}, format="json")
    results = response.json()["data"]["results"]
    assert [r["status"] for r in results] == ["created", "updated", "unchanged"]
    assert len({r["uid"] for r in results}) == 1
    assert MetricValue.objects.get().value == 2
    response = editor_client.post(URL, {"items": items}, format="json")
    assert response.status_code == 409


@pytest.mark.django_db
def test_dry_run_reports_the_same_and_writes_nothing(editor_client, organization, total_ar):
    editor_client.post(URL, {"items": days(organization, 1)}, format="json")
    payload = {"items": days(organization, 3), "on_conflict": "skip"}
    dry = editor_client.post(URL, {**payload, "dry_run": True}, format="json").json()["data"]
    assert MetricValue.objects.count() == 1
    real = editor_client.post(URL, payload, format="json").json()["data"]
    assert [r["status"] for r in dry["results"]] == [r["status"] for r in real["results"]]
    assert dry["counts"] == real["counts"]
    assert dry["batch_id"] is None and dry["written"] is False
    assert MetricValue.objects.count() == 3


@pytest.mark.django_db
def test_invisible_entity_reads_exactly_like_a_missing_one(
    editor_client, organization, other_organization, total_ar
):
    ghost = Organization(uid=uuid.uuid4())
    items = [item(other_organization), item(ghost), item(organization)]
    response = editor_client.post(URL, {"items": items, "on_conflict": "skip"}, format="json")
    results = response.json()["data"]["results"]
    assert results[0]["errors"] == results[1]["errors"]
    assert results[0]["code"] == results[1]["code"] == "not_found"
    assert results[0]["errors"] == {"entity_uid": ["No ORGANIZATION with this uid was found."]}
    assert results[2]["status"] == "created"
    assert MetricValue.objects.count() == 1


@pytest.mark.django_db
def test_viewer_gets_a_permission_error_per_item(viewer_client, organization, total_ar):
    response = viewer_client.post(
        URL, {"items": days(organization, 2), "on_conflict": "skip"}, format="json"
    )
    results = response.json()["data"]["results"]
    assert {r["code"] for r in results} == {"permission_denied"}
    assert not MetricValue.objects.exists()
    response = viewer_client.post(URL, {"items": days(organization, 2)}, format="json")
    assert response.status_code == 400


@pytest.mark.django_db
def test_items_of_several_contexts_with_mixed_rights(
    client_for,
    make_user,
    organization,
    other_organization,
    party,
    other_party,
    total_ar,
    party_metric,
    make_definition,
):
    make_definition("user_tasks", context_type="USER", value_type="count")
    writer = make_user("mixed@acme.test", organization=organization, role=Role.EDITOR)
    Membership.objects.create(user=writer, organization=other_organization, role=Role.VIEWER)
    colleague = make_user("colleague@acme.test", organization=organization)
    stranger = make_user("stranger@globex.test", organization=other_organization)
    items = [
        item(party, "party_total_ar", context_type="PARTY"),
        item(other_party, "party_total_ar", context_type="PARTY"),  # visible, read-only
        item(colleague, "user_tasks", context_type="USER"),
        item(stranger, "user_tasks", context_type="USER"),  # shares only a viewer org
        item(writer, "user_tasks", context_type="USER"),  # own values
        item(party, "total_ar", context_type="PARTY"),  # wrong context for the metric
    ]
    response = client_for(writer).post(URL, {"items": items, "on_conflict": "skip"}, format="json")
    results = response.json()["data"]["results"]
    assert [r["status"] for r in results] == [
        "created",
        "error",
        "created",
        "error",
        "created",
        "error",
    ]
    assert results[1]["code"] == results[3]["code"] == "permission_denied"
    assert "not PARTY" in results[5]["errors"]["metric_uid"][0]


@pytest.mark.django_db
def test_staff_writes_any_organization(staff_client, other_organization, total_ar):
    response = staff_client.post(URL, {"items": days(other_organization, 2)}, format="json")
    assert response.json()["data"]["counts"]["created"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ({"context_type": "TEAM"}, "context_type", "context_type must be one of"),
        ({"entity_uid": "nope"}, "entity_uid", "Must be a valid UUID."),
        ({"colour": "red"}, "colour", "Unknown field."),
        ({"metric_uid": "nope"}, "metric_uid", "Unknown metric 'nope'."),
        ({"value": "NaN"}, "value", "is not numeric"),
        ({"metric_date": "2026-03-02", "time_unit": "month"}, "metric_date", "2026-03-01"),
        ({"timezone": "Mars/Olympus"}, "timezone", "not a known IANA timezone"),
        ({"_metadata": [1]}, "_metadata", "must be a JSON object"),
    ],
)
def test_each_single_create_rule_applies_per_item(
    editor_client, organization, total_ar, bad, field, message
):
    items = [item(organization, day="2026-01-01"), {**item(organization), **bad}]
    response = editor_client.post(URL, {"items": items, "on_conflict": "skip"}, format="json")
    assert response.status_code == 200
    results = response.json()["data"]["results"]
    assert results[0]["status"] == "created"
    assert results[1]["status"] == "error"
    assert message in " ".join(results[1]["errors"][field])


@pytest.mark.django_db
def test_non_object_item_is_an_item_error(editor_client, organization, total_ar):
    response = editor_client.post(
        URL, {"items": [item(organization), 5], "on_conflict": "skip"}, format="json"
    )
    results = response.json()["data"]["results"]
    assert results[1]["errors"] == {"non_field_errors": ["Each item must be a JSON object."]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({"items": "x"}, "items"),
        ({}, "items"),
        ({"items": [{}], "on_conflict": "merge"}, "on_conflict"),
        ({"items": [{}], "dry_run": "yes"}, "dry_run"),
        ({"items": [{}], "extra": 1}, "extra"),
    ],
)
def test_bad_envelope_is_400_naming_the_field(editor_client, body, field):
    response = editor_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.django_db
def test_more_than_5000_items_is_400(editor_client, organization):
    response = editor_client.post(URL, {"items": [{}] * 5001}, format="json")
    assert response.status_code == 400
    assert "items" in response.json()["errors"]


@pytest.mark.django_db
def test_body_over_the_bulk_limit_is_413(editor_client, settings):
    limit = settings.API_MAX_BULK_BODY_BYTES
    response = editor_client.post(
        URL, b'{"items": ["' + b"x" * limit + b'"]}', content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.django_db
def test_anonymous_is_401(anon_client):
    assert anon_client.post(URL, {"items": [{}]}, format="json").status_code == 401


@pytest.mark.django_db
def test_trailing_slash_is_accepted(editor_client, organization, total_ar):
    response = editor_client.post(URL + "/", {"items": days(organization, 1)}, format="json")
    assert response.status_code == 200


def _bulk_queries(client, items) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.post(URL, {"items": items, "on_conflict": "update"}, format="json")
    assert response.status_code == 200, response.json()
    return len(captured)


@pytest.mark.django_db
def test_query_count_does_not_grow_with_items(
    editor_client, organization, party, total_ar, party_metric, django_assert_num_queries
):
    def batch(count, start):
        return [
            *days(organization, count // 2, start=start),
            *days(party, count // 2, start=start, metric="party_total_ar", context_type="PARTY"),
        ]

    # Warm-up: authentication caches and the like are not what is measured.
    _bulk_queries(editor_client, batch(2, date(2020, 1, 1)))
    small = _bulk_queries(editor_client, batch(10, date(2021, 1, 1)))
    with django_assert_num_queries(small):
        editor_client.post(
            URL, {"items": batch(200, date(2022, 1, 1)), "on_conflict": "update"}, format="json"
        )
    # Same again as updates of half the rows and inserts of the rest.
    mixed = batch(200, date(2022, 2, 20))
    with django_assert_num_queries(small + 1):  # + the UPDATE statement
        editor_client.post(URL, {"items": mixed, "on_conflict": "update"}, format="json")
    assert MetricValue.objects.count() == 2 + 10 + 200 + 100


@pytest.mark.django_db
def test_five_thousand_items_in_one_call(editor_client, organization, total_ar):
    items = days(organization, 5000, start=date(2000, 1, 1))
    response = editor_client.post(URL, {"items": items}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["counts"]["created"] == 5000
    assert MetricValue.objects.count() == 5000


@pytest.mark.django_db
@pytest.mark.parametrize("context_type", [{}, [], 1, True])
def test_an_item_whose_context_type_is_not_text_is_an_item_error(
    editor_client, organization, total_ar, context_type
):
    item = {
        "context_type": context_type,
        "entity_uid": str(organization.uid),
        "metric_uid": "total_ar",
        "metric_date": "2026-03-15",
        "value": 0.0,
    }
    response = editor_client.post(URL, {"on_conflict": "skip", "items": [item]}, format="json")
    assert response.status_code == 200, response.content
    [result] = response.json()["data"]["results"]
    assert result["status"] == "error"
    assert list(result["errors"]) == ["context_type"]
