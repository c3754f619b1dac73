"""Coverage (missing runs of an entity's metrics) and freshness (how far behind each
series of an organization is), from worked examples."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
import time_machine

from entities.models import Membership, Party, Role
from metrics.constants import ContextType
from metrics.models import MetricValue

pytestmark = pytest.mark.django_db


def put(definition, entity, day: date, time_unit: str = "day", value=1) -> None:
    MetricValue.objects.create(
        metric=definition,
        context_type=definition.context_type,
        entity_uid=entity.uid,
        time_unit=time_unit,
        metric_date=day,
        value=Decimal(value),
    )


def coverage(client, entity, context_type=ContextType.ORGANIZATION, **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    response = client.get(f"/api/metrics/coverage/{context_type}/{entity.uid}?{query}")
    return response, orjson.loads(response.content)


def freshness(client, organization, **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    response = client.get(f"/api/organizations/{organization.uid}/freshness?{query}")
    return response, orjson.loads(response.content)


@pytest.fixture
def flow(make_definition):
    return make_definition("collected", value_type="currency")


@pytest.fixture
def balance(make_definition):
    return make_definition("balance", value_type="currency", is_snapshot=True)


def test_missing_runs_at_the_start_middle_and_end(viewer_client, organization, flow):
    for day in (3, 4, 7, 8):
        put(flow, organization, date(2026, 1, day))

    response, body = coverage(
        viewer_client, organization, metric_uid="collected", start_date="2026-01-01",
        end_date="2026-01-10",
    )  # fmt: skip

    assert response.status_code == 200
    assert body["data"]["metrics"] == [
        {
            "metric_uid": "collected",
            "time_unit": "day",
            "expected": 10,
            "present": 4,
            "coverage": 0.4,
            "first_date": "2026-01-03",
            "last_date": "2026-01-08",
            "missing": [
                {"start": "2026-01-01", "end": "2026-01-02", "periods": 2},
                {"start": "2026-01-05", "end": "2026-01-06", "periods": 2},
                {"start": "2026-01-09", "end": "2026-01-10", "periods": 2},
            ],
        }
    ]


def test_a_range_with_no_values_is_one_run(viewer_client, organization, flow, balance):
    put(flow, organization, date(2025, 12, 31))
    for day in range(1, 6):
        put(balance, organization, date(2026, 1, day))

    _, body = coverage(
        viewer_client, organization, metric_uid="collected,balance", start_date="2026-01-01",
        end_date="2026-01-05",
    )  # fmt: skip

    empty, full = body["data"]["metrics"]
    assert (empty["metric_uid"], empty["present"], empty["first_date"], empty["coverage"]) == (
        "collected",
        0,
        None,
        0,
    )
    assert empty["missing"] == [{"start": "2026-01-01", "end": "2026-01-05", "periods": 5}]
    assert (full["present"], full["coverage"], full["missing"]) == (5, 1, [])


def test_month_unit(viewer_client, organization, flow):
    for month in (1, 2, 5):
        put(flow, organization, date(2026, month, 1), time_unit="month")
    put(flow, organization, date(2026, 3, 15))  # a day value is not a month value

    _, body = coverage(
        viewer_client, organization, metric_uid="collected", time_unit="month",
        start_date="2026-01-20", end_date="2026-06-30",
    )  # fmt: skip

    item = body["data"]["metrics"][0]
    assert (item["expected"], item["present"], item["first_date"], item["last_date"]) == (
        6,
        3,
        "2026-01-01",
        "2026-05-01",
    )
    assert item["missing"] == [
        {"start": "2026-03-01", "end": "2026-04-01", "periods": 2},
        {"start": "2026-06-01", "end": "2026-06-01", "periods": 1},
    ]


def test_year_unit(viewer_client, organization, flow):
    put(flow, organization, date(2021, 1, 1), time_unit="year")
    put(flow, organization, date(2024, 1, 1), time_unit="year")

    _, body = coverage(
        viewer_client, organization, metric_uid="collected", time_unit="year",
        start_date="2020-01-01", end_date="2025-12-31",
    )  # fmt: skip

    item = body["data"]["metrics"][0]
    assert (item["expected"], item["present"], item["coverage"]) == (6, 2, 0.3333)
    assert item["missing"] == [
        {"start": "2020-01-01", "end": "2020-01-01", "periods": 1},
        {"start": "2022-01-01", "end": "2023-01-01", "periods": 2},
        {"start": "2025-01-01", "end": "2025-01-01", "periods": 1},
    ]


def test_coverage_costs_one_statement_whatever_the_metrics(
    viewer_client, organization, make_definition, django_assert_num_queries
):
    uids = []
    for n in range(10):
        definition = make_definition(f"metric_{n}")
        put(definition, organization, date(2026, 1, 2 + n))
        uids.append(definition.uid)

    # Authentication, the entity, the definitions, the coverage.
    with django_assert_num_queries(4):
        response, _ = coverage(viewer_client, organization, metric_uid=",".join(uids))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "metric_uid"),
        ({"metric_uid": "nope"}, "metric_uid"),
        ({"metric_uid": "collected", "time_unit": "week"}, "time_unit"),
        ({"metric_uid": "collected", "start_date": "2026-03-02", "end_date": "2026-03-01"},
         "start_date"),
        ({"metric_uid": "collected", "start_date": "0001-01-01"}, "start_date"),
    ],
)  # fmt: skip
def test_bad_coverage_parameters_are_400(viewer_client, organization, flow, params, field):
    response, body = coverage(viewer_client, organization, **params)

    assert response.status_code == 400
    assert list(body["errors"]) == [field]


def test_coverage_of_another_tenants_entity_is_404(outsider_client, organization, flow):
    response, _ = coverage(outsider_client, organization, metric_uid="collected")

    assert response.status_code == 404


# --- Freshness -------------------------------------------------------------------------------


@pytest.fixture
def catalogue(make_definition):
    return {
        "org": make_definition("org_flow"),
        "party": make_definition("party_flow", context_type=ContextType.PARTY),
        "user": make_definition("user_tasks", context_type=ContextType.USER),
    }


def rows(body) -> list[tuple]:
    return [
        (item["entity_name"], item["metric_uid"], item["last_date"], item["periods_behind"],
         item["stale"])
        for item in body["data"]["items"]
    ]  # fmt: skip


# 2026-03-10 06:00 UTC is still March 9th in Los Angeles (23:00 PDT), Acme's timezone.
FIXED = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)


@time_machine.travel(FIXED, tick=False)
def test_freshness_rows_sorted_stale_first_in_the_organizations_today(
    client_for, organization, viewer, catalogue
):
    viewer_client = client_for(viewer)  # a token minted at the fixed instant
    alpha = Party.objects.create(organization=organization, name="Alpha")
    beta = Party.objects.create(organization=organization, name="Beta")
    Party.objects.create(organization=organization, name="Retired", is_active=False)
    put(catalogue["org"], organization, date(2026, 3, 9))  # today in Los Angeles
    put(catalogue["party"], alpha, date(2026, 3, 8))  # 1 behind: fresh
    put(catalogue["party"], beta, date(2026, 3, 1))  # 8 behind

    response, body = freshness(
        viewer_client, organization, metric_uid="org_flow,party_flow,user_tasks"
    )

    assert response.status_code == 200
    assert rows(body) == [
        ("viewer@acme.test", "user_tasks", None, None, True),
        ("Beta", "party_flow", "2026-03-01", 8, True),
        ("Alpha", "party_flow", "2026-03-08", 1, False),
        ("Acme Corp", "org_flow", "2026-03-09", 0, False),
    ]
    assert body["data"]["_meta"] == {"page": 1, "per_page": 25, "total_pages": 1, "total_items": 4}
    assert body["data"]["items"][0]["entity_uid"] == str(viewer.uid)
    assert body["data"]["items"][0]["context_type"] == "USER"


@time_machine.travel(FIXED, tick=False)
def test_freshness_filter_pages_and_stale_after(client_for, viewer, organization, catalogue):
    viewer_client = client_for(viewer)
    for n in range(5):
        party = Party.objects.create(organization=organization, name=f"P{n}")
        put(catalogue["party"], party, date(2026, 3, 9) - timedelta(days=n))

    _, stale = freshness(
        viewer_client, organization, metric_uid="party_flow", stale="true", stale_after=2
    )
    _, fresh_page = freshness(
        viewer_client, organization, metric_uid="party_flow", stale="false", stale_after=2,
        per_page=2, page=2,
    )  # fmt: skip
    _, past_end = freshness(viewer_client, organization, metric_uid="party_flow", page=9)

    assert [row[0] for row in rows(stale)] == ["P4", "P3"]
    assert [row[0] for row in rows(fresh_page)] == ["P0"]
    assert fresh_page["data"]["_meta"]["total_items"] == 3
    assert past_end["data"] == {
        "items": [],
        "_meta": {"page": 9, "per_page": 25, "total_pages": 1, "total_items": 5},
    }


@time_machine.travel(FIXED, tick=False)
def test_freshness_months_and_members(
    client_for, viewer, organization, editor, catalogue, make_user
):
    viewer_client = client_for(viewer)
    put(catalogue["user"], editor, date(2026, 1, 1), time_unit="month")
    make_user("inactive@acme.test", organization=organization, is_active=False)

    _, body = freshness(viewer_client, organization, metric_uid="user_tasks", time_unit="month")

    assert sorted(rows(body)) == [
        ("editor@acme.test", "user_tasks", "2026-01-01", 2, True),
        ("viewer@acme.test", "user_tasks", None, None, True),
    ]


def test_freshness_of_another_organization_is_404(outsider_client, organization, catalogue):
    response, _ = freshness(outsider_client, organization, metric_uid="org_flow")

    assert response.status_code == 404


def test_freshness_with_an_api_key_of_another_organization_is_404(
    make_api_key, key_client, outsider, other_organization, organization, catalogue
):
    _, raw = make_api_key(outsider, other_organization)

    response, _ = freshness(key_client(raw), organization, metric_uid="org_flow")

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "metric_uid"),
        ({"metric_uid": "nope"}, "metric_uid"),
        ({"metric_uid": "org_flow", "stale": "maybe"}, "stale"),
        ({"metric_uid": "org_flow", "stale_after": "-1"}, "stale_after"),
        ({"metric_uid": "org_flow", "per_page": "101"}, "per_page"),
    ],
)
def test_bad_freshness_parameters_are_400(viewer_client, organization, catalogue, params, field):
    response, body = freshness(viewer_client, organization, **params)

    assert response.status_code == 400
    assert list(body["errors"]) == [field]


def test_freshness_costs_one_statement_whatever_the_parties(
    viewer_client, organization, catalogue, django_assert_num_queries
):
    for n in range(30):
        Party.objects.create(organization=organization, name=f"P{n}")
    Membership.objects.filter(organization=organization).update(role=Role.VIEWER)

    # Authentication, the organization, the definitions, the page with its count.
    with django_assert_num_queries(4):
        response, body = freshness(
            viewer_client, organization, metric_uid="org_flow,party_flow,user_tasks"
        )

    assert response.status_code == 200
    assert body["data"]["_meta"]["total_items"] == 32
