"""The metric value API: create checks in order, list parameters, and the
single-value GET/PATCH/DELETE, for every context type and every kind of caller."""

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest

from entities.models import Role
from metrics.constants import ContextType
from metrics.models import MetricValue


@pytest.fixture
def party_metric(make_definition):
    return make_definition(
        "party_total_ar",
        name="Party AR",
        context_type=ContextType.PARTY,
        value_type="currency",
        storage_unit="cents",
        is_snapshot=True,
    )


@pytest.fixture
def user_metric(make_definition):
    return make_definition(
        "user_open_tasks", name="Open Tasks", context_type=ContextType.USER, value_type="count"
    )


@pytest.fixture
def dso(make_definition):
    return make_definition(
        "dso", name="DSO", value_type="days", period_definition="trailing_30_days"
    )


@pytest.fixture
def open_invoices(make_definition):
    return make_definition("open_invoice_count", name="Open invoices", value_type="count")


@pytest.fixture
def collector(make_user, organization):
    """A viewer of Acme whose own USER values the tests write."""
    return make_user("collector@acme.test", organization=organization, role=Role.VIEWER)


@pytest.fixture
def scope(request, organization, party, collector, total_ar, party_metric, user_metric):
    """(context_type, entity, definition) for each context type; parametrize indirectly."""
    return {
        ContextType.ORGANIZATION: (ContextType.ORGANIZATION, organization, total_ar),
        ContextType.PARTY: (ContextType.PARTY, party, party_metric),
        ContextType.USER: (ContextType.USER, collector, user_metric),
    }[request.param]


ALL_CONTEXTS = [ContextType.ORGANIZATION, ContextType.PARTY, ContextType.USER]


def values_url(context_type, entity_uid) -> str:
    return f"/api/metrics/values/{context_type}/{entity_uid}"


def body_for(definition, **overrides) -> dict:
    body = {"metric_uid": definition.uid, "metric_date": "2026-03-15", "value": 350000000}
    body.update(overrides)
    return body


def make_value(definition, entity, context_type, metric_date, value="1", **fields):
    return MetricValue.objects.create(
        metric=definition,
        context_type=context_type,
        entity_uid=entity.uid,
        metric_date=metric_date,
        value=Decimal(value),
        **fields,
    )


# --- Create --------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ALL_CONTEXTS, indirect=True)
def test_create_returns_201_with_location_and_definition_facts(scope, staff_client):
    context_type, entity, definition = scope
    response = staff_client.post(
        values_url(context_type, entity.uid), body_for(definition, _metadata={"src": "erp"})
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "success" and body["status_code"] == 201
    data = body["data"]
    row = MetricValue.objects.get()
    assert data["uid"] == str(row.uid)
    assert response["Location"].endswith(f"/api/metrics/values/{row.uid}")
    assert data["metric_uid"] == definition.uid
    assert data["metric_name"] == definition.name
    assert data["period_definition"] == definition.period_definition
    assert data["value_type"] == definition.value_type
    assert data["storage_unit"] == definition.storage_unit
    assert data["context_type"] == context_type
    assert data["entity_uid"] == str(entity.uid)
    assert data["time_unit"] == "day"
    assert data["metric_date"] == "2026-03-15"
    assert data["_metadata"] == {"src": "erp"}
    assert data["created_at"].endswith("Z")
    # A JSON number, not a string.
    assert b'"value":350000000' in response.content


@pytest.mark.parametrize(
    ("context_type", "expected_timezone"),
    [
        (ContextType.ORGANIZATION, "America/Los_Angeles"),
        (ContextType.PARTY, "America/Los_Angeles"),
        (ContextType.USER, "Asia/Tokyo"),
    ],
)
def test_timezone_defaults_to_the_entitys_organization(
    context_type,
    expected_timezone,
    staff_client,
    organization,
    party,
    collector,
    total_ar,
    party_metric,
    user_metric,
):
    collector.timezone = "Asia/Tokyo"
    collector.save()
    entity, definition = {
        ContextType.ORGANIZATION: (organization, total_ar),
        ContextType.PARTY: (party, party_metric),
        ContextType.USER: (collector, user_metric),
    }[context_type]
    response = staff_client.post(values_url(context_type, entity.uid), body_for(definition))
    assert response.status_code == 201
    assert response.json()["data"]["timezone"] == expected_timezone
    assert MetricValue.objects.get().timezone == expected_timezone


def test_explicit_timezone_is_kept(editor_client, organization, total_ar):
    response = editor_client.post(
        values_url("ORGANIZATION", organization.uid), body_for(total_ar, timezone="Europe/Paris")
    )
    assert response.status_code == 201
    assert response.json()["data"]["timezone"] == "Europe/Paris"


def test_seven_decimals_round_half_even(editor_client, organization, dso):
    response = editor_client.post(
        values_url("ORGANIZATION", organization.uid), body_for(dso, value=1.0000025)
    )
    assert response.status_code == 201, response.content
    assert response.json()["data"]["value"] == 1.000002
    assert MetricValue.objects.get().value == Decimal("1.000002")


def test_numeric_string_is_accepted_and_returned_as_number(editor_client, organization, dso):
    response = editor_client.post(
        values_url("ORGANIZATION", organization.uid), body_for(dso, value="42.50")
    )
    assert response.status_code == 201
    assert b'"value":42.5' in response.content


def test_big_value_keeps_every_digit(editor_client, organization, dso):
    response = editor_client.post(
        values_url("ORGANIZATION", organization.uid),
        body_for(dso, value="999999999999999999.999999"),
    )
    assert response.status_code == 201, response.content
    assert b'"value":999999999999999999.999999' in response.content


@pytest.mark.parametrize("time_unit,metric_date", [("month", "2026-03-01"), ("year", "2026-01-01")])
def test_aligned_month_and_year_values_are_created(
    editor_client, organization, total_ar, time_unit, metric_date
):
    response = editor_client.post(
        values_url("ORGANIZATION", organization.uid),
        body_for(total_ar, time_unit=time_unit, metric_date=metric_date),
    )
    assert response.status_code == 201
    assert response.json()["data"]["time_unit"] == time_unit


def test_misaligned_month_names_the_aligned_date(editor_client, organization, total_ar):
    response = editor_client.post(
        values_url("ORGANIZATION", organization.uid),
        body_for(total_ar, time_unit="month", metric_date="2026-03-15"),
    )
    assert response.status_code == 400
    assert "2026-03-01" in response.json()["errors"]["metric_date"][0]


@pytest.mark.parametrize("bad", ["organization", "ORG", "Party", "ACCOUNT"])
def test_unknown_context_type_is_404_naming_the_allowed_values(anon_client, organization, bad):
    # Not even authentication runs first: the URL itself does not exist.
    response = anon_client.post(values_url(bad, organization.uid), {}, format="json")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    for allowed in ALL_CONTEXTS:
        assert allowed in body["message"]
    assert not MetricValue.objects.exists()


def test_malformed_entity_uid_is_404(editor_client, total_ar):
    response = editor_client.get(values_url("ORGANIZATION", "not-a-uuid"))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_unknown_and_invisible_entities_get_the_same_404(
    editor_client, other_organization, total_ar
):
    unknown = editor_client.post(values_url("ORGANIZATION", uuid.uuid4()), body_for(total_ar))
    invisible = editor_client.post(
        values_url("ORGANIZATION", other_organization.uid), body_for(total_ar)
    )
    assert unknown.status_code == invisible.status_code == 404
    assert unknown.json() == invisible.json()
    assert not MetricValue.objects.exists()


def test_entity_of_another_context_table_is_404(editor_client, organization, party_metric):
    # An organization's uid under PARTY: the party table has no such row.
    response = editor_client.post(values_url("PARTY", organization.uid), body_for(party_metric))
    assert response.status_code == 404


def test_entity_404_comes_before_body_validation(editor_client):
    response = editor_client.post(values_url("PARTY", uuid.uuid4()), {"junk": 1})
    assert response.status_code == 404


def test_unknown_metric_is_400_on_metric_uid(editor_client, organization):
    response = editor_client.post(
        values_url("ORGANIZATION", organization.uid),
        {"metric_uid": "nope", "metric_date": "2026-03-15", "value": 1},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["errors"]) == ["metric_uid"]
    assert "nope" in body["errors"]["metric_uid"][0]


def test_metric_of_another_context_is_400_naming_both(editor_client, organization, party_metric):
    response = editor_client.post(
        values_url("ORGANIZATION", organization.uid), body_for(party_metric)
    )
    assert response.status_code == 400
    message = response.json()["errors"]["metric_uid"][0]
    assert "PARTY" in message and "ORGANIZATION" in message
    assert response.json()["message"].startswith("metric_uid:")


def test_inactive_metric_is_400_on_metric_uid(editor_client, organization, total_ar):
    total_ar.is_active = False
    total_ar.save()
    response = editor_client.post(values_url("ORGANIZATION", organization.uid), body_for(total_ar))
    assert response.status_code == 400
    assert "inactive" in response.json()["errors"]["metric_uid"][0]
    assert not MetricValue.objects.exists()


def test_viewer_gets_403_on_a_valid_create(viewer_client, organization, total_ar):
    response = viewer_client.post(values_url("ORGANIZATION", organization.uid), body_for(total_ar))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not MetricValue.objects.exists()


def test_viewer_gets_400_before_403_for_an_invalid_body(viewer_client, organization, total_ar):
    # Validation (steps 3–5) answers before the write permission (step 6).
    response = viewer_client.post(
        values_url("ORGANIZATION", organization.uid), body_for(total_ar, value="abc")
    )
    assert response.status_code == 400


def test_viewer_of_a_party_gets_403(viewer_client, party, party_metric):
    response = viewer_client.post(values_url("PARTY", party.uid), body_for(party_metric))
    assert response.status_code == 403


def test_user_may_write_own_values(client_for, collector, user_metric):
    response = client_for(collector).post(
        values_url("USER", collector.uid), body_for(user_metric, value=3)
    )
    assert response.status_code == 201


def test_viewer_may_not_write_a_colleagues_values(viewer_client, collector, user_metric):
    response = viewer_client.post(values_url("USER", collector.uid), body_for(user_metric, value=3))
    assert response.status_code == 403


def test_outsider_gets_404_not_403(outsider_client, organization, party, total_ar, party_metric):
    assert (
        outsider_client.post(values_url("ORGANIZATION", organization.uid), body_for(total_ar))
    ).status_code == 404
    assert outsider_client.get(values_url("PARTY", party.uid)).status_code == 404


def test_duplicate_is_409_with_existing_uid(editor_client, organization, total_ar):
    url = values_url("ORGANIZATION", organization.uid)
    first = editor_client.post(url, body_for(total_ar))
    assert first.status_code == 201
    second = editor_client.post(url, body_for(total_ar, value=1))
    assert second.status_code == 409
    body = second.json()
    assert body["code"] == "duplicate_value"
    assert body["data"] == {"uid": first.json()["data"]["uid"]}
    assert "metric_date" in body["errors"]
    assert MetricValue.objects.count() == 1
    assert MetricValue.objects.get().value == Decimal(350000000)


def test_same_date_with_another_time_unit_is_not_a_duplicate(editor_client, organization, total_ar):
    url = values_url("ORGANIZATION", organization.uid)
    assert editor_client.post(url, body_for(total_ar, metric_date="2026-03-01")).status_code == 201
    assert (
        editor_client.post(url, body_for(total_ar, metric_date="2026-03-01", time_unit="month"))
    ).status_code == 201


def test_trailing_slash_is_accepted_without_redirect(editor_client, organization, total_ar):
    response = editor_client.post(
        values_url("ORGANIZATION", organization.uid) + "/", body_for(total_ar)
    )
    assert response.status_code == 201
    detail = editor_client.get(f"/api/metrics/values/{response.json()['data']['uid']}/")
    assert detail.status_code == 200


def test_anonymous_create_is_401(anon_client, organization, total_ar):
    response = anon_client.post(
        values_url("ORGANIZATION", organization.uid), body_for(total_ar), format="json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_definition_routes_still_work(editor_client, total_ar):
    assert editor_client.get("/api/metrics/total_ar").json()["data"]["uid"] == "total_ar"
    assert editor_client.get("/api/metrics").status_code == 200
    # `values` is not a metric uid: the definitions route answers 404, not a value route.
    assert editor_client.get("/api/metrics/values").status_code == 404


def test_bulk_path_is_not_taken_by_the_value_routes(editor_client):
    # `/api/metrics/values/bulk` belongs to the bulk endpoint, which only takes POST; the
    # `{value_uid}` route only matches UUIDs and never sees it.
    response = editor_client.get("/api/metrics/values/bulk")
    assert response.status_code == 405
    assert response.json()["status"] == "error"


# --- List ----------------------------------------------------------------------------------


@pytest.fixture
def history(organization, total_ar, dso):
    """Daily values of two metrics for the last 120 days in Acme's timezone, plus a month."""
    today = datetime.now(ZoneInfo(organization.timezone)).date()
    rows = []
    for offset in range(120):
        day = today - timedelta(days=offset)
        rows.append(
            MetricValue(
                metric=total_ar,
                context_type="ORGANIZATION",
                entity_uid=organization.uid,
                metric_date=day,
                value=Decimal(1000 + offset),
                metadata={"offset": offset},
            )
        )
        rows.append(
            MetricValue(
                metric=dso,
                context_type="ORGANIZATION",
                entity_uid=organization.uid,
                metric_date=day,
                value=Decimal(40) + Decimal(offset) / 100,
            )
        )
    rows.append(
        MetricValue(
            metric=total_ar,
            context_type="ORGANIZATION",
            entity_uid=organization.uid,
            time_unit="month",
            metric_date=today.replace(day=1) - timedelta(days=400),
            value=Decimal(5),
        )
    )
    MetricValue.objects.bulk_create(rows)
    return today


def list_values(client, organization, **params):
    response = client.get(values_url("ORGANIZATION", organization.uid), params)
    return response


def test_list_defaults_to_last_90_days_of_day_values(viewer_client, organization, history):
    response = list_values(viewer_client, organization, per_page=1000)
    assert response.status_code == 200
    data = response.json()["data"]
    items = data["items"]
    dates = {item["metric_date"] for item in items}
    assert max(dates) == history.isoformat()
    assert min(dates) == (history - timedelta(days=90)).isoformat()
    assert len(items) == 2 * 91
    assert data["_meta"] == {"page": 1, "per_page": 1000, "total_pages": 1, "total_items": 182}
    assert all(item["time_unit"] == "day" for item in items)
    assert all("_metadata" not in item for item in items)
    assert set(items[0]) == {
        "uid",
        "metric_uid",
        "metric_name",
        "period_definition",
        "value_type",
        "storage_unit",
        "context_type",
        "entity_uid",
        "time_unit",
        "metric_date",
        "value",
        "timezone",
        "version",
        "created_at",
        "updated_at",
    }


def test_list_default_page_size_is_100(viewer_client, organization, history):
    data = list_values(viewer_client, organization).json()["data"]
    assert data["_meta"]["per_page"] == 100
    assert len(data["items"]) == 100
    assert data["_meta"]["total_pages"] == 2


def test_list_default_sort_is_newest_first_then_metric_uid(viewer_client, organization, history):
    items = list_values(viewer_client, organization, per_page=4).json()["data"]["items"]
    assert [(i["metric_date"], i["metric_uid"]) for i in items] == [
        (history.isoformat(), "dso"),
        (history.isoformat(), "total_ar"),
        ((history - timedelta(days=1)).isoformat(), "dso"),
        ((history - timedelta(days=1)).isoformat(), "total_ar"),
    ]


def test_list_pages_never_overlap(viewer_client, organization, history):
    seen = []
    for page in (1, 2, 3):
        items = list_values(viewer_client, organization, per_page=70, page=page).json()["data"][
            "items"
        ]
        seen += [item["uid"] for item in items]
    assert len(seen) == len(set(seen)) == 182


@pytest.mark.parametrize(
    "sort", ["value", "+value", " value", "-value", "created_at", "metric_date"]
)
def test_list_sorts_by_each_allowed_field(viewer_client, organization, history, sort):
    items = list_values(
        viewer_client, organization, sort=sort, metric_uid="total_ar", per_page=1000
    ).json()["data"]["items"]
    key = sort.strip(" +-")
    values = [item[key] for item in items]
    assert values == sorted(values, reverse=sort.startswith("-"))
    assert len(items) == 91


def test_list_unknown_sort_is_400_listing_allowed(viewer_client, organization, history):
    response = list_values(viewer_client, organization, sort="uid")
    assert response.status_code == 400
    assert "metric_date" in response.json()["errors"]["sort"][0]


def test_list_filters_by_metric_uids(viewer_client, organization, history):
    items = list_values(viewer_client, organization, metric_uid="dso", per_page=1000).json()[
        "data"
    ]["items"]
    assert {item["metric_uid"] for item in items} == {"dso"}
    both = list_values(viewer_client, organization, metric_uid="dso, total_ar").json()["data"]
    assert both["_meta"]["total_items"] == 182


def test_list_unknown_metric_uid_is_400_listing_it(viewer_client, organization, history):
    response = list_values(viewer_client, organization, metric_uid="dso,nope,zilch")
    assert response.status_code == 400
    message = response.json()["errors"]["metric_uid"][0]
    assert "nope" in message and "zilch" in message and "dso" not in message


def test_list_metric_of_other_context_is_400(viewer_client, organization, party_metric, history):
    response = list_values(viewer_client, organization, metric_uid="party_total_ar")
    assert response.status_code == 400
    assert "PARTY" in response.json()["errors"]["metric_uid"][0]


def test_list_date_range_is_inclusive(viewer_client, organization, history):
    start = history - timedelta(days=10)
    end = history - timedelta(days=5)
    data = list_values(
        viewer_client, organization, start_date=start.isoformat(), end_date=end.isoformat()
    ).json()["data"]
    assert data["_meta"]["total_items"] == 12
    assert {item["metric_date"] for item in data["items"]} == {
        (start + timedelta(days=n)).isoformat() for n in range(6)
    }


def test_list_start_after_end_is_400(viewer_client, organization, history):
    response = list_values(
        viewer_client, organization, start_date="2026-03-02", end_date="2026-03-01"
    )
    assert response.status_code == 400
    assert "start_date" in response.json()["errors"]


def test_list_time_unit_selects_rows_of_that_unit(viewer_client, organization, history):
    data = list_values(
        viewer_client, organization, time_unit="month", start_date="1900-01-01"
    ).json()["data"]
    assert [item["time_unit"] for item in data["items"]] == ["month"]


def test_list_latest_gives_newest_value_per_metric_ignoring_dates(
    viewer_client, organization, history
):
    data = list_values(
        viewer_client, organization, latest="true", start_date="2000-01-01", end_date="2000-01-02"
    ).json()["data"]
    assert [(i["metric_uid"], i["metric_date"]) for i in data["items"]] == [
        ("dso", history.isoformat()),
        ("total_ar", history.isoformat()),
    ]
    monthly = list_values(viewer_client, organization, latest="1", time_unit="month").json()[
        "data"
    ]["items"]
    assert [i["value"] for i in monthly] == [5]
    only_dso = list_values(viewer_client, organization, latest="true", metric_uid="dso").json()
    assert [i["metric_uid"] for i in only_dso["data"]["items"]] == ["dso"]


def test_list_latest_is_per_entity(viewer_client, organization, history, party, party_metric):
    make_value(party_metric, party, "PARTY", date(2020, 1, 1), "7")
    items = list_values(viewer_client, organization, latest="true").json()["data"]["items"]
    assert {i["entity_uid"] for i in items} == {str(organization.uid)}


def test_list_include_metadata(viewer_client, organization, history):
    items = list_values(
        viewer_client, organization, include_metadata="true", metric_uid="total_ar", per_page=1
    ).json()["data"]["items"]
    assert items[0]["_metadata"] == {"offset": 0}


@pytest.mark.parametrize("param", ["latest", "include_metadata"])
@pytest.mark.parametrize("raw", ["yes", "TRUEISH", "2", "on"])
def test_list_booleans_are_strict(viewer_client, organization, param, raw):
    response = list_values(viewer_client, organization, **{param: raw})
    assert response.status_code == 400
    assert param in response.json()["errors"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"per_page": 1001}, "per_page"),
        ({"per_page": 0}, "per_page"),
        ({"page": 0}, "page"),
        ({"page": "x"}, "page"),
        ({"time_unit": "week"}, "time_unit"),
        ({"start_date": "2026-02-30"}, "start_date"),
        ({"end_date": "03/01/2026"}, "end_date"),
    ],
)
def test_list_bad_parameters_are_400(viewer_client, organization, params, field):
    response = list_values(viewer_client, organization, **params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_list_per_page_1000_is_allowed(viewer_client, organization, history):
    assert list_values(viewer_client, organization, per_page=1000).status_code == 200


def test_list_page_past_the_end_is_empty(viewer_client, organization, history):
    data = list_values(viewer_client, organization, page=50).json()["data"]
    assert data["items"] == [] and data["_meta"]["total_items"] == 182


def test_list_of_other_entity_does_not_leak(viewer_client, party, party_metric, history):
    data = viewer_client.get(values_url("PARTY", party.uid)).json()["data"]
    assert data["items"] == []


def test_list_anonymous_is_401(anon_client, organization):
    assert anon_client.get(values_url("ORGANIZATION", organization.uid)).status_code == 401


# --- Single value --------------------------------------------------------------------------


@pytest.fixture
def stored(organization, total_ar):
    return make_value(
        total_ar, organization, "ORGANIZATION", date(2026, 3, 1), "100", metadata={"a": 1}
    )


def detail_url(value) -> str:
    return f"/api/metrics/values/{value.uid}"


def test_get_value_includes_metadata(viewer_client, stored):
    response = viewer_client.get(detail_url(stored))
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["_metadata"] == {"a": 1}
    assert data["metric_uid"] == "total_ar"
    assert data["value"] == 100


def test_get_value_uppercase_uid(viewer_client, stored):
    assert viewer_client.get(f"/api/metrics/values/{str(stored.uid).upper()}").status_code == 200


def test_value_of_invisible_entity_is_404_like_missing(outsider_client, stored):
    invisible = outsider_client.get(detail_url(stored))
    missing = outsider_client.get(f"/api/metrics/values/{uuid.uuid4()}")
    assert invisible.status_code == missing.status_code == 404
    assert invisible.json() == missing.json()
    assert outsider_client.patch(detail_url(stored), {"value": 1}).status_code == 404
    assert outsider_client.delete(detail_url(stored)).status_code == 404
    assert MetricValue.objects.get().value == Decimal(100)


def test_patch_changes_value_timezone_and_replaces_metadata(editor_client, stored):
    response = editor_client.patch(
        detail_url(stored), {"value": "250", "timezone": "Europe/Paris", "_metadata": {"b": 2}}
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["value"] == 250
    assert data["timezone"] == "Europe/Paris"
    assert data["_metadata"] == {"b": 2}
    stored.refresh_from_db()
    assert stored.value == Decimal(250) and stored.metadata == {"b": 2}


def test_patch_revalidates_value_against_metric(editor_client, stored):
    # total_ar is stored in cents: fractions are not allowed.
    response = editor_client.patch(detail_url(stored), {"value": 1.5})
    assert response.status_code == 400
    assert "value" in response.json()["errors"]
    stored.refresh_from_db()
    assert stored.value == Decimal(100)


def test_patch_immutable_field_with_same_value_is_ignored(editor_client, stored, organization):
    response = editor_client.patch(
        detail_url(stored),
        {
            "metric_uid": "total_ar",
            "context_type": "ORGANIZATION",
            "entity_uid": str(organization.uid).upper(),
            "time_unit": "day",
            "metric_date": "2026-03-01",
            "value": 7,
        },
    )
    assert response.status_code == 200, response.content
    assert response.json()["data"]["value"] == 7


@pytest.mark.parametrize(
    ("field", "new"),
    [
        ("metric_uid", "dso"),
        ("context_type", "PARTY"),
        ("entity_uid", "6f1c7c5e-0000-4000-8000-000000000000"),
        ("time_unit", "month"),
        ("metric_date", "2026-03-02"),
    ],
)
def test_patch_immutable_field_with_new_value_is_400(editor_client, stored, field, new):
    response = editor_client.patch(detail_url(stored), {field: new, "value": 5})
    assert response.status_code == 400
    assert field in response.json()["errors"]
    stored.refresh_from_db()
    assert stored.value == Decimal(100)


def test_patch_unknown_field_is_400(editor_client, stored):
    response = editor_client.patch(detail_url(stored), {"colour": "red"})
    assert response.status_code == 400
    assert "colour" in response.json()["errors"]


def test_patch_by_viewer_is_403(viewer_client, stored):
    response = viewer_client.patch(detail_url(stored), {"value": 1})
    assert response.status_code == 403
    stored.refresh_from_db()
    assert stored.value == Decimal(100)


def test_delete_returns_200_with_empty_data(editor_client, stored):
    response = editor_client.delete(detail_url(stored))
    assert response.status_code == 200
    assert response.json()["data"] == {}
    assert not MetricValue.objects.exists()


def test_delete_by_viewer_is_403(viewer_client, stored):
    assert viewer_client.delete(detail_url(stored)).status_code == 403
    assert MetricValue.objects.exists()


def test_org_admin_and_staff_may_write(client_for, org_admin, staff, stored):
    assert client_for(org_admin).patch(detail_url(stored), {"value": 2}).status_code == 200
    assert client_for(staff).patch(detail_url(stored), {"value": 3}).status_code == 200


def test_value_of_a_party_is_visible_to_its_organizations_members(
    viewer_client, party, party_metric
):
    value = make_value(party_metric, party, "PARTY", date(2026, 1, 1), "10")
    assert viewer_client.get(detail_url(value)).status_code == 200


def test_membership_removed_hides_values(viewer_client, viewer, stored):
    viewer.memberships.all().delete()
    assert viewer_client.get(detail_url(stored)).status_code == 404


def test_editor_in_one_org_viewer_in_another(
    make_user, client_for, organization, other_organization, total_ar
):
    from entities.models import Membership

    user = make_user("mixed@example.com", organization=organization, role=Role.EDITOR)
    Membership.objects.create(user=user, organization=other_organization, role=Role.VIEWER)
    client = client_for(user)
    assert (
        client.post(values_url("ORGANIZATION", organization.uid), body_for(total_ar)).status_code
        == 201
    )
    assert (
        client.post(values_url("ORGANIZATION", other_organization.uid), body_for(total_ar))
    ).status_code == 403


def test_response_body_is_compact_json(viewer_client, stored):
    # The renderer writes Decimal as a number; a round trip through orjson keeps it exact.
    payload = orjson.loads(viewer_client.get(detail_url(stored)).content)
    assert payload["data"]["value"] == 100


def test_list_and_detail_write_timestamps_the_same_way(viewer_client, organization, stored):
    # One row with whole seconds: the database's text then has no fraction either.
    MetricValue.objects.filter(pk=stored.pk).update(
        created_at=datetime(2026, 3, 1, 8, 0, 0, tzinfo=ZoneInfo("UTC")),
        updated_at=datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=ZoneInfo("UTC")),
    )
    listed = list_values(viewer_client, organization, start_date="2026-01-01").json()["data"]
    detail = viewer_client.get(detail_url(stored)).json()["data"]
    item = listed["items"][0]
    assert item["created_at"] == detail["created_at"] == "2026-03-01T08:00:00Z"
    assert item["updated_at"] == detail["updated_at"] == "2026-03-01T09:30:15.250000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-15 10:00:00.5+00", "2026-03-15T10:00:00.500000Z"),
        ("2026-03-15 10:00:00+00:00", "2026-03-15T10:00:00Z"),
        ("2026-03-15 10:00:00.123456", "2026-03-15T10:00:00.123456Z"),
        ("2026-03-15 12:00:00+02", "2026-03-15T10:00:00Z"),
        (datetime(2026, 3, 15, 10, 0, tzinfo=ZoneInfo("UTC")), "2026-03-15T10:00:00Z"),
    ],
)
def test_timestamp_text_forms(text, expected):
    from metrics.api.serializers import _timestamp

    assert _timestamp(text) == expected


# --- API keys (scopes) -----------------------------------------------------------------------


def test_read_only_key_follows_the_create_order(
    make_api_key, key_client, editor, organization, total_ar
):
    _, raw = make_api_key(editor, organization, ["metrics:read"])
    client = key_client(raw)
    url = values_url("ORGANIZATION", organization.uid)
    assert client.get(url).status_code == 200
    # Unknown entity and invalid body come before the write permission (checks 2, 3, 6).
    assert (
        client.post(values_url("ORGANIZATION", uuid.uuid4()), body_for(total_ar)).status_code == 404
    )
    assert client.post(url, body_for(total_ar, value="x")).status_code == 400
    denied = client.post(url, body_for(total_ar))
    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"
    assert "metrics:write" in denied.json()["message"]
    assert not MetricValue.objects.exists()


def test_write_key_creates_only_inside_its_organization(
    make_api_key, key_client, make_user, organization, other_organization, total_ar
):
    from entities.models import Membership

    user = make_user("two-orgs@example.com", organization=organization, role=Role.EDITOR)
    Membership.objects.create(user=user, organization=other_organization, role=Role.EDITOR)
    _, raw = make_api_key(user, organization, ["metrics:write"])
    client = key_client(raw)
    assert (
        client.post(values_url("ORGANIZATION", organization.uid), body_for(total_ar)).status_code
        == 201
    )
    # The user may write Globex's values with a JWT, but this key acts inside Acme only.
    assert (
        client.post(values_url("ORGANIZATION", other_organization.uid), body_for(total_ar))
    ).status_code == 404


def test_key_without_metrics_scope_is_refused(make_api_key, key_client, editor, organization):
    _, raw = make_api_key(editor, organization, ["entities:read"])
    client = key_client(raw)
    assert client.get(values_url("ORGANIZATION", organization.uid)).status_code == 403
    assert client.post(values_url("ORGANIZATION", organization.uid), {}).status_code == 403


def test_read_only_key_cannot_patch_or_delete(make_api_key, key_client, editor, stored):
    _, raw = make_api_key(editor, stored_organization(stored), ["metrics:read"])
    client = key_client(raw)
    assert client.get(detail_url(stored)).status_code == 200
    assert client.patch(detail_url(stored), {"value": 1}).status_code == 403
    assert client.delete(detail_url(stored)).status_code == 403
    stored.refresh_from_db()
    assert stored.value == Decimal(100)


def stored_organization(value):
    from entities.models import Organization

    return Organization.objects.get(uid=value.entity_uid)
