"""The series endpoint, from worked examples: each aggregation, ISO weeks across a year
boundary, leap February, stored months against days, fill, compare, the roll-up across
parties, the 400s, visibility and the pinned query count."""

from datetime import date, timedelta
from decimal import Decimal

import orjson
import pytest

from entities.models import Party
from metrics.constants import ContextType
from metrics.models import MetricValue

pytestmark = pytest.mark.django_db


def put(definition, entity, day: date, value, time_unit: str = "day") -> None:
    MetricValue.objects.create(
        metric=definition,
        context_type=definition.context_type,
        entity_uid=entity.uid,
        time_unit=time_unit,
        metric_date=day,
        value=Decimal(str(value)),
    )


def series(client, entity, context_type=ContextType.ORGANIZATION, **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    response = client.get(f"/api/metrics/series/{context_type}/{entity.uid}?{query}")
    return response, orjson.loads(response.content)


def points(body, index: int = 0) -> list[dict]:
    return body["data"]["series"][index]["points"]


@pytest.fixture
def flow(make_definition):
    return make_definition("collected", value_type="currency")


@pytest.fixture
def balance(make_definition):
    return make_definition("balance", value_type="currency", is_snapshot=True)


@pytest.fixture
def rate(make_definition):
    return make_definition("rate", value_type="percentage")


@pytest.fixture
def lowest(make_definition):
    return make_definition("lowest", aggregation="min")


@pytest.fixture
def highest(make_definition):
    return make_definition("highest", aggregation="max")


def test_sum_of_a_month_with_its_coverage(viewer_client, organization, flow):
    for day, value in [(date(2026, 1, 5), 10), (date(2026, 1, 6), 2.5), (date(2026, 2, 1), 7)]:
        put(flow, organization, day, value)

    response, body = series(
        viewer_client,
        organization,
        metric_uid="collected",
        start_date="2026-01-01",
        end_date="2026-02-28",
    )

    assert response.status_code == 200
    assert body["data"]["series"][0] == {
        "metric_uid": "collected",
        "metric_name": "Collected",
        "aggregation": "sum",
        "value_type": "currency",
        "storage_unit": "raw",
        "points": [
            {"start": "2026-01-01", "end": "2026-01-31", "value": 12.5, "count": 2,
             "expected": 31, "coverage": 0.0645, "source": "days"},
            {"start": "2026-02-01", "end": "2026-02-28", "value": 7, "count": 1,
             "expected": 28, "coverage": 0.0357, "source": "days"},
        ],
    }  # fmt: skip
    assert body["data"]["bucket"] == "month"
    assert body["data"]["start_date"] == "2026-01-01"
    assert body["data"]["entity_uid"] == str(organization.uid)


def test_last_average_min_and_max_in_one_answer(
    viewer_client, organization, balance, rate, lowest, highest
):
    for definition in (balance, rate, lowest, highest):
        for day, value in [(date(2026, 3, 2), 40), (date(2026, 3, 30), 10), (date(2026, 3, 9), 70)]:
            put(definition, organization, day, value)

    response, body = series(
        viewer_client, organization, metric_uid="balance,rate,lowest,highest",
        start_date="2026-03-01", end_date="2026-03-31",
    )  # fmt: skip

    assert response.status_code == 200
    found = {
        item["metric_uid"]: (item["aggregation"], item["points"][0]["value"])
        for item in body["data"]["series"]
    }
    assert found == {
        "balance": ("last", 10),
        "rate": ("average", 40),
        "lowest": ("min", 10),
        "highest": ("max", 70),
    }
    assert [item["metric_uid"] for item in body["data"]["series"]] == [
        "balance",
        "rate",
        "lowest",
        "highest",
    ]


def test_iso_week_across_a_year_boundary_is_one_bucket(viewer_client, organization, flow):
    for offset in range(7):
        put(flow, organization, date(2020, 12, 28) + timedelta(days=offset), 1)
    put(flow, organization, date(2021, 1, 4), 100)

    _, body = series(
        viewer_client, organization, metric_uid="collected", bucket="week",
        start_date="2020-12-30", end_date="2021-01-04",
    )  # fmt: skip

    assert [
        (p["start"], p["end"], p["value"], p["count"], p["expected"]) for p in points(body)
    ] == [
        ("2020-12-28", "2021-01-03", 5, 5, 5),
        ("2021-01-04", "2021-01-10", 100, 1, 1),
    ]


def test_leap_february_and_the_default_start(viewer_client, organization, flow):
    put(flow, organization, date(2024, 2, 29), 3)
    put(flow, organization, date(2023, 2, 28), 1)

    _, body = series(viewer_client, organization, metric_uid="collected", end_date="2024-02-29")

    assert body["data"]["start_date"] == "2023-02-28"
    first, last = points(body)[0], points(body)[-1]
    assert len(points(body)) == 13
    assert (first["start"], first["value"], first["expected"]) == ("2023-02-01", 1, 1)
    assert (last["start"], last["end"], last["value"], last["expected"]) == (
        "2024-02-01",
        "2024-02-29",
        3,
        29,
    )


def test_stored_month_wins_over_its_days_and_a_thin_month_shows(viewer_client, organization, flow):
    put(flow, organization, date(2026, 4, 1), 500, time_unit="month")
    for offset in range(30):
        put(flow, organization, date(2026, 4, 1) + timedelta(days=offset), 1)
    put(flow, organization, date(2026, 5, 10), 9)

    _, body = series(
        viewer_client, organization, metric_uid="collected", start_date="2026-04-15",
        end_date="2026-05-31",
    )  # fmt: skip

    assert points(body) == [
        {"start": "2026-04-01", "end": "2026-04-30", "value": 500, "count": 1,
         "expected": 1, "coverage": 1, "source": "stored"},
        {"start": "2026-05-01", "end": "2026-05-31", "value": 9, "count": 1,
         "expected": 31, "coverage": 0.0323, "source": "days"},
    ]  # fmt: skip


def test_stored_year_wins_for_a_year_bucket(viewer_client, organization, flow):
    put(flow, organization, date(2025, 1, 1), 1000, time_unit="year")
    put(flow, organization, date(2025, 6, 1), 5)
    put(flow, organization, date(2026, 6, 1), 6)

    _, body = series(
        viewer_client, organization, metric_uid="collected", bucket="year",
        start_date="2025-03-01", end_date="2026-12-31",
    )  # fmt: skip

    assert [(p["start"], p["value"], p["source"], p["expected"]) for p in points(body)] == [
        ("2025-01-01", 1000, "stored", 1),
        ("2026-01-01", 6, "days", 365),
    ]


def test_quarters_start_in_january_april_july_and_october(viewer_client, organization, flow):
    put(flow, organization, date(2026, 5, 20), 4)

    _, body = series(
        viewer_client, organization, metric_uid="collected", bucket="quarter",
        start_date="2026-02-10", end_date="2026-07-01",
    )  # fmt: skip

    assert [(p["start"], p["end"], p["value"], p["expected"]) for p in points(body)] == [
        ("2026-01-01", "2026-03-31", None, 50),
        ("2026-04-01", "2026-06-30", 4, 91),
        ("2026-07-01", "2026-09-30", None, 1),
    ]


def test_empty_bucket_is_null_and_day_buckets_list_every_day(viewer_client, organization, flow):
    put(flow, organization, date(2026, 1, 2), 4)

    _, body = series(
        viewer_client, organization, metric_uid="collected", bucket="day",
        start_date="2026-01-01", end_date="2026-01-03",
    )  # fmt: skip

    assert [(p["start"], p["value"], p["count"], p["source"]) for p in points(body)] == [
        ("2026-01-01", None, 0, None),
        ("2026-01-02", 4, 1, "days"),
        ("2026-01-03", None, 0, None),
    ]


@pytest.mark.parametrize(
    ("fill", "expected"), [("zero", [0, 4, 0, 6, 0]), ("previous", [None, 4, 4, 6, 6])]
)
def test_fill_changes_values_but_never_count(viewer_client, organization, flow, fill, expected):
    put(flow, organization, date(2026, 1, 2), 4)
    put(flow, organization, date(2026, 1, 4), 6)

    _, body = series(
        viewer_client, organization, metric_uid="collected", bucket="day", fill=fill,
        start_date="2026-01-01", end_date="2026-01-05",
    )  # fmt: skip

    assert [p["value"] for p in points(body)] == expected
    assert [p["count"] for p in points(body)] == [0, 1, 0, 1, 0]
    assert [p["source"] for p in points(body)] == [None, "days", None, "days", None]


def test_compare_previous_period_with_a_zero_base(viewer_client, organization, flow):
    # December to February compares with the three months before: September to November.
    for day, value in [
        (date(2025, 9, 3), 50),
        (date(2025, 10, 3), 0),  # January's base is zero
        (date(2025, 11, 3), 30),
        (date(2025, 12, 3), 0),
        (date(2026, 1, 3), 30),
        (date(2026, 2, 3), 80),
    ]:
        put(flow, organization, day, value)

    _, body = series(
        viewer_client, organization, metric_uid="collected", compare="previous_period",
        start_date="2025-12-01", end_date="2026-02-28",
    )  # fmt: skip

    found = [
        (p["start"], p["value"], p["compare_value"], p["change"], p["change_pct"])
        for p in points(body)
    ]
    assert found == [
        ("2025-12-01", 0, 50, -50, -100),
        ("2026-01-01", 30, 0, 30, None),
        ("2026-02-01", 80, 30, 50, 166.6667),
    ]


def test_compare_previous_year(viewer_client, organization, balance):
    put(balance, organization, date(2025, 3, 31), 200)
    put(balance, organization, date(2026, 3, 31), 150)

    _, body = series(
        viewer_client, organization, metric_uid="balance", compare="previous_year",
        start_date="2026-03-01", end_date="2026-04-30",
    )  # fmt: skip

    assert [
        (p["start"], p["value"], p["compare_value"], p["change"], p["change_pct"])
        for p in points(body)
    ] == [
        ("2026-03-01", 150, 200, -50, -25),
        ("2026-04-01", None, None, None, None),
    ]


def test_across_parties_rolls_up_active_parties(
    viewer_client, organization, make_definition, django_assert_num_queries
):
    party_balance = make_definition(
        "party_balance", context_type=ContextType.PARTY, value_type="currency", is_snapshot=True
    )
    party_days = make_definition("party_days", context_type=ContextType.PARTY, value_type="days")
    first = Party.objects.create(organization=organization, name="First")
    second = Party.objects.create(organization=organization, name="Second")
    gone = Party.objects.create(organization=organization, name="Gone", is_active=False)
    for party, january, february in [(first, 100, 110), (second, 40, None), (gone, 999, 999)]:
        put(party_balance, party, date(2026, 1, 10), january - 1)
        put(party_balance, party, date(2026, 1, 31), january)
        put(party_days, party, date(2026, 1, 31), january)
        if february is not None:
            put(party_balance, party, date(2026, 2, 28), february)
    put(party_balance, second, date(2026, 2, 1), 45, time_unit="month")

    with django_assert_num_queries(4):
        response, body = series(
            viewer_client, organization, metric_uid="party_balance,party_days",
            across="parties", start_date="2026-01-01", end_date="2026-03-31",
        )  # fmt: skip

    assert response.status_code == 200
    balance_points = [
        (p["value"], p["parties"], p["count"], p["expected"], p["source"]) for p in points(body)
    ]
    assert balance_points == [
        (140, 2, 4, 62, "days"),
        (155, 2, 2, 29, "days"),  # the second party's stored February
        (None, 0, 0, 62, None),
    ]
    assert [p["value"] for p in points(body, 1)] == [70, None, None]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "metric_uid"),
        ({"metric_uid": "nope"}, "metric_uid"),
        ({"metric_uid": ",".join(f"m{n}" for n in range(21))}, "metric_uid"),
        ({"metric_uid": "party_only"}, "metric_uid"),
        ({"metric_uid": "collected", "bucket": "hour"}, "bucket"),
        ({"metric_uid": "collected", "start_date": "2026-02-30"}, "start_date"),
        ({"metric_uid": "collected", "start_date": "2026-03-02", "end_date": "2026-03-01"},
         "start_date"),
        ({"metric_uid": "collected", "bucket": "day", "start_date": "2020-01-01",
          "end_date": "2026-01-01"}, "bucket"),
        ({"metric_uid": "collected", "end_date": "1899-12-31"}, "end_date"),
        ({"metric_uid": "collected", "fill": "linear"}, "fill"),
        ({"metric_uid": "collected", "compare": "yesterday"}, "compare"),
        ({"metric_uid": "collected", "across": "users"}, "across"),
        ({"metric_uid": "collected", "across": "parties"}, "metric_uid"),
    ],
)  # fmt: skip
def test_bad_parameters_are_400_naming_the_field(
    viewer_client, organization, flow, make_definition, params, field
):
    make_definition("party_only", context_type=ContextType.PARTY)

    response, body = series(viewer_client, organization, **params)

    assert response.status_code == 400
    assert body["code"] == "validation_error"
    assert list(body["errors"]) == [field]


def test_across_parties_needs_an_organization_path(viewer_client, party, make_definition):
    make_definition("party_only", context_type=ContextType.PARTY)

    response, body = series(
        viewer_client, party, ContextType.PARTY, metric_uid="party_only", across="parties"
    )

    assert response.status_code == 400
    assert list(body["errors"]) == ["across"]


def test_another_tenants_entity_is_404(outsider_client, organization, flow):
    put(flow, organization, date(2026, 1, 2), 4)

    response, body = series(outsider_client, organization, metric_uid="collected")

    assert response.status_code == 404
    assert body["code"] == "not_found"


def test_an_api_key_of_another_organization_is_404(
    make_api_key, key_client, outsider, other_organization, organization, flow
):
    _, raw = make_api_key(outsider, other_organization)

    response, _ = series(key_client(raw), organization, metric_uid="collected")

    assert response.status_code == 404


def test_unknown_context_type_is_404(viewer_client, organization):
    response = viewer_client.get(f"/api/metrics/series/ORG/{organization.uid}?metric_uid=collected")

    assert response.status_code == 404
    assert "ORGANIZATION" in orjson.loads(response.content)["message"]


@pytest.mark.parametrize("compare", [None, "previous_year"])
def test_query_count_does_not_grow_with_metrics(
    viewer_client, organization, make_definition, django_assert_num_queries, compare
):
    definitions = [make_definition(f"metric_{n}", is_snapshot=n % 2 == 0) for n in range(12)]
    for definition in definitions:
        put(definition, organization, date(2026, 1, 1), 1)
    uids = [definition.uid for definition in definitions]
    extra = {"compare": compare} if compare else {}

    # Authentication, the entity, the definitions, then one statement (two to compare).
    with django_assert_num_queries(5 if compare else 4):
        response, _ = series(
            viewer_client, organization, metric_uid=",".join(uids), bucket="week", **extra
        )

    assert response.status_code == 200


def test_the_series_selector_works_without_http(organization, flow):
    from metrics.series import metric_series

    put(flow, organization, date(2026, 1, 5), 2)

    data = metric_series(
        context_type=ContextType.ORGANIZATION,
        entity=organization,
        definitions=[flow],
        bucket="year",
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
    )

    assert data["series"][0]["points"][0]["value"] == Decimal("2")
    assert data["series"][0]["points"][0]["expected"] == 365
