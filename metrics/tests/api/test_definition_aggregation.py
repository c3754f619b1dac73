"""A definition's ``aggregation``: derived on create when not given, immutable after,
filled for definitions that existed before the field, and right for the demo catalogue."""

import orjson
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from metrics.demo import DEMO_METRICS, ensure_catalogue
from metrics.models import MetricDefinition

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value_type", "is_snapshot", "expected"),
    [
        ("currency", True, "last"),
        ("count", True, "last"),
        ("percentage", True, "last"),
        ("percentage", False, "average"),
        ("ratio", False, "average"),
        ("days", False, "average"),
        ("currency", False, "sum"),
        ("count", False, "sum"),
    ],
)
def test_create_derives_the_aggregation(staff_client, value_type, is_snapshot, expected):
    response = staff_client.post(
        "/api/metrics",
        {"uid": "derived", "name": "Derived", "value_type": value_type, "is_snapshot": is_snapshot},
        format="json",
    )

    assert response.status_code == 201
    assert orjson.loads(response.content)["data"]["aggregation"] == expected
    assert MetricDefinition.objects.get(uid="derived").aggregation == expected


def test_create_keeps_a_given_aggregation(staff_client):
    response = staff_client.post(
        "/api/metrics",
        {"uid": "peak", "name": "Peak", "is_snapshot": True, "aggregation": "max"},
        format="json",
    )

    assert response.status_code == 201
    assert MetricDefinition.objects.get(uid="peak").aggregation == "max"


@pytest.mark.parametrize("bad", ["median", "", "SUM", None, 1])
def test_an_unknown_aggregation_is_400_naming_it(staff_client, bad):
    response = staff_client.post(
        "/api/metrics", {"uid": "bad_one", "name": "Bad", "aggregation": bad}, format="json"
    )

    assert response.status_code == 400
    assert list(orjson.loads(response.content)["errors"]) == ["aggregation"]
    assert not MetricDefinition.objects.filter(uid="bad_one").exists()


def test_aggregation_cannot_change(staff_client, total_ar):
    changed = staff_client.patch("/api/metrics/total_ar", {"aggregation": "sum"}, format="json")
    same = staff_client.patch("/api/metrics/total_ar", {"aggregation": "last"}, format="json")

    assert changed.status_code == 400
    assert list(orjson.loads(changed.content)["errors"]) == ["aggregation"]
    assert same.status_code == 200
    total_ar.refresh_from_db()
    assert total_ar.aggregation == "last"


def test_demo_catalogue_aggregations():
    definitions = ensure_catalogue()

    found = {uid: definition.aggregation for uid, definition in definitions.items()}
    assert found == {metric.uid: metric.aggregation for metric in DEMO_METRICS}
    assert found["total_ar"] == "last"
    assert found["dso"] == "average"
    assert found["collection_rate"] == "average"
    assert found["collected_amount"] == "sum"


@pytest.mark.django_db(transaction=True)
def test_migration_fills_existing_definitions():
    executor = MigrationExecutor(connection)
    executor.migrate([("metrics", "0004_value_history_triggers")])
    old_apps = executor.loader.project_state([("metrics", "0004_value_history_triggers")]).apps
    Old = old_apps.get_model("metrics", "MetricDefinition")
    Old.objects.create(uid="old_balance", name="Old balance", is_snapshot=True)
    Old.objects.create(uid="old_rate", name="Old rate", value_type="ratio")
    Old.objects.create(uid="old_flow", name="Old flow", value_type="currency")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("metrics"))

    assert dict(
        MetricDefinition.objects.filter(uid__startswith="old_").values_list("uid", "aggregation")
    ) == {"old_balance": "last", "old_rate": "average", "old_flow": "sum"}
