"""Value history: every write path records one version, with who, how and why; version,
ETag and If-Match; as-of reads of the list and of one value."""

import io
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from uuid6 import uuid7

from metrics.models import MetricValue, MetricValueHistory

URL = "/api/metrics/values"


def tick():
    """SQLite records milliseconds: let two writes fall in different ones."""
    time.sleep(0.003)


@pytest.fixture
def org_url(organization):
    return f"{URL}/ORGANIZATION/{organization.uid}"


@pytest.fixture
def created(editor_client, org_url, total_ar):
    response = editor_client.post(
        org_url,
        {"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 100},
        format="json",
        HTTP_X_CHANGE_REASON="first figure",
    )
    assert response.status_code == 201
    return response


def versions(uid) -> list[MetricValueHistory]:
    return list(MetricValueHistory.objects.filter(value_uid=uid).order_by("version"))


def history_items(client, uid, **params) -> list[dict]:
    response = client.get(f"{URL}/{uid}/history", params)
    assert response.status_code == 200
    return response.json()["data"]["items"]


def test_create_records_version_1_with_user_reason_and_etag(created, editor):
    body = created.json()["data"]
    assert created["ETag"] == '"1"'
    assert body["version"] == 1
    [entry] = versions(body["uid"])
    assert (entry.version, entry.operation, entry.source) == (1, "create", "api")
    assert (entry.recorded_by_uid, entry.reason, entry.batch_id) == (
        editor.uid,
        "first figure",
        None,
    )


def test_patch_and_delete_each_add_one_version_and_history_answers_after_delete(
    created, editor_client, editor
):
    uid = created.json()["data"]["uid"]
    patched = editor_client.patch(f"{URL}/{uid}", {"value": 150}, format="json")
    assert patched.status_code == 200
    assert patched["ETag"] == '"2"'
    assert patched.json()["data"]["version"] == 2
    assert editor_client.delete(f"{URL}/{uid}", HTTP_X_CHANGE_REASON="wrong").status_code == 200
    assert editor_client.get(f"{URL}/{uid}").status_code == 404
    items = history_items(editor_client, uid)
    assert [(i["version"], i["operation"], i["value"]) for i in items] == [
        (3, "delete", 150),
        (2, "update", 150),
        (1, "create", 100),
    ]
    assert items[0]["recorded_by"] == {"uid": str(editor.uid), "email": editor.email}
    assert [i["reason"] for i in items] == ["wrong", None, "first figure"]
    assert {i["source"] for i in items} == {"api"}
    recorded_at = items[0]["recorded_at"]
    assert recorded_at.endswith("Z") and len(recorded_at) == len("2026-03-15T10:00:00.123456Z")


def test_patch_that_changes_nothing_keeps_version_and_records_nothing(created, editor_client):
    uid = created.json()["data"]["uid"]
    response = editor_client.patch(f"{URL}/{uid}", {"value": "100.000000"}, format="json")
    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    assert len(versions(uid)) == 1


def test_get_answers_with_etag(created, editor_client):
    uid = created.json()["data"]["uid"]
    response = editor_client.get(f"{URL}/{uid}")
    assert response["ETag"] == '"1"'


def test_if_match_of_another_version_is_412_with_current_version(created, editor_client):
    uid = created.json()["data"]["uid"]
    response = editor_client.patch(
        f"{URL}/{uid}", {"value": 5}, format="json", HTTP_IF_MATCH='"7", "8"'
    )
    assert response.status_code == 412
    body = response.json()
    assert (body["code"], body["data"]) == ("precondition_failed", {"version": 1})
    assert editor_client.delete(f"{URL}/{uid}", HTTP_IF_MATCH='"2"').status_code == 412
    assert MetricValue.objects.get(uid=uid).value == Decimal(100)
    assert len(versions(uid)) == 1


def test_if_match_of_the_current_version_or_star_proceeds(created, editor_client):
    uid = created.json()["data"]["uid"]
    response = editor_client.patch(
        f"{URL}/{uid}", {"value": 5}, format="json", HTTP_IF_MATCH='"3", "1"'
    )
    assert response.status_code == 200
    assert editor_client.delete(f"{URL}/{uid}", HTTP_IF_MATCH="*").status_code == 200


def test_malformed_if_match_is_400_naming_it(created, editor_client):
    uid = created.json()["data"]["uid"]
    response = editor_client.patch(f"{URL}/{uid}", {"value": 5}, format="json", HTTP_IF_MATCH="1")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["If-Match"]


def test_change_reason_over_500_characters_is_400_and_writes_nothing(
    editor_client, org_url, total_ar
):
    response = editor_client.post(
        org_url,
        {"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1},
        format="json",
        HTTP_X_CHANGE_REASON="x" * 501,
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["X-Change-Reason"]
    assert not MetricValue.objects.exists()
    assert not MetricValueHistory.objects.exists()


def test_api_key_write_records_the_key(
    make_api_key, key_client, editor, organization, org_url, total_ar
):
    key, raw = make_api_key(editor, organization)
    response = key_client(raw).post(
        org_url, {"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1}, format="json"
    )
    assert response.status_code == 201
    [entry] = versions(response.json()["data"]["uid"])
    assert (entry.api_key_uid, entry.recorded_by_uid) == (key.uid, editor.uid)


def test_outsider_gets_404_for_history_and_as_of(created, outsider_client):
    uid = created.json()["data"]["uid"]
    assert outsider_client.get(f"{URL}/{uid}/history").status_code == 404
    now = datetime.now(UTC).isoformat()
    assert outsider_client.get(f"{URL}/{uid}", {"as_of": now}).status_code == 404


def test_history_of_a_value_that_never_existed_is_404(editor_client, db):
    response = editor_client.get(f"{URL}/0190e0a0-0000-7000-8000-000000000000/history")
    assert response.status_code == 404


def test_bulk_records_its_batch_and_an_identical_update_records_nothing(
    editor_client, organization, total_ar
):
    item = {
        "context_type": "ORGANIZATION",
        "entity_uid": str(organization.uid),
        "metric_uid": "total_ar",
        "metric_date": "2026-03-15",
        "value": 10,
    }
    first = editor_client.post(
        f"{URL}/bulk",
        {"on_conflict": "update", "items": [item]},
        format="json",
        HTTP_X_CHANGE_REASON="monthly load",
    )
    assert first.status_code == 200
    batch = first.json()["data"]["batch_id"]
    uid = first.json()["data"]["results"][0]["uid"]
    again = editor_client.post(
        f"{URL}/bulk", {"on_conflict": "update", "items": [item]}, format="json"
    )
    assert again.json()["data"]["counts"]["unchanged"] == 1
    changed = editor_client.post(
        f"{URL}/bulk", {"on_conflict": "update", "items": [{**item, "value": 11}]}, format="json"
    )
    second_batch = changed.json()["data"]["batch_id"]
    entries = versions(uid)
    assert [(e.version, e.operation, e.source, str(e.batch_id)) for e in entries] == [
        (1, "create", "bulk", batch),
        (2, "update", "bulk", second_batch),
    ]
    assert entries[0].reason == "monthly load"
    assert MetricValue.objects.get(uid=uid).version == 2


def _raw(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_write_made_in_sql_by_hand_is_recorded_as_system(created, editor_client):
    uid = created.json()["data"]["uid"]
    table = MetricValue._meta.db_table
    pk = MetricValue._meta.pk.get_db_prep_value(uid, connection)
    _raw(f"UPDATE {table} SET value = 7 WHERE uid = %s", [pk])
    _raw(f"UPDATE {table} SET timezone = timezone WHERE uid = %s", [pk])
    assert MetricValue.objects.get(uid=uid).version == 2
    _raw(f"DELETE FROM {table} WHERE uid = %s", [pk])
    items = history_items(editor_client, uid)
    assert [(i["version"], i["operation"], i["source"], i["recorded_by"]) for i in items] == [
        (3, "delete", "system", None),
        (2, "update", "system", None),
        (1, "create", "api", items[2]["recorded_by"]),
    ]
    assert items[1]["value"] == 7


def test_as_of_reads_the_list_and_one_value_as_they_were(created, editor_client, org_url, total_ar):
    uid = created.json()["data"]["uid"]
    tick()
    before_second = datetime.now(UTC)
    tick()
    later = editor_client.post(
        org_url, {"metric_uid": "total_ar", "metric_date": "2026-03-16", "value": 1}, format="json"
    ).json()["data"]["uid"]
    editor_client.patch(f"{URL}/{uid}", {"value": 200}, format="json")
    tick()
    before_delete = datetime.now(UTC)
    tick()
    editor_client.delete(f"{URL}/{uid}")
    window = {"start_date": "2026-03-01", "end_date": "2026-03-31"}

    def listed(instant, **extra):
        response = editor_client.get(org_url, {**window, "as_of": instant.isoformat(), **extra})
        assert response.status_code == 200
        return [(i["uid"], i["value"], i["version"]) for i in response.json()["data"]["items"]]

    assert listed(before_second) == [(uid, 100, 1)]
    assert listed(before_delete) == [(later, 1, 1), (uid, 200, 2)]
    assert listed(datetime.now(UTC)) == [(later, 1, 1)]
    assert listed(before_second, latest="true") == [(uid, 100, 1)]
    assert listed(before_delete, latest="true") == [(later, 1, 1)]
    single = editor_client.get(f"{URL}/{uid}", {"as_of": before_delete.isoformat()})
    assert (single.status_code, single["ETag"]) == (200, '"2"')
    assert single.json()["data"]["value"] == 200
    assert (
        editor_client.get(f"{URL}/{later}", {"as_of": before_second.isoformat()}).status_code == 404
    )


@pytest.mark.parametrize(
    "as_of",
    ["2026-03-15", "2026-03-15T10:00:00", "yesterday", "2999-01-01T00:00:00Z"],
    ids=["bare-date", "no-offset", "junk", "future"],
)
def test_bad_as_of_is_400_naming_it(editor_client, org_url, created, as_of):
    response = editor_client.get(org_url, {"as_of": as_of})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["as_of"]


def test_as_of_takes_an_offset_sent_unencoded(editor_client, org_url, created):
    instant = (datetime.now(UTC) + timedelta(hours=-1)).strftime("%Y-%m-%dT%H:%M:%S")
    response = editor_client.get(f"{org_url}?as_of={instant}+00:00")
    assert response.status_code == 200


ENGINES = [
    pytest.param("portable", id="portable"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_import_records_its_run_and_reason_and_revert_records_the_deletes(
    request, engine, tmp_path, organization, total_ar
):
    if engine == "postgresql":
        request.getfixturevalue("postgres_only")
    path = tmp_path / "values.csv"
    path.write_text(
        "context_type,entity_uid,metric_uid,metric_date,value\n"
        f"ORGANIZATION,{organization.uid},total_ar,2026-03-15,5\n"
    )

    def run_import(*args):
        call_command(
            "import_metric_values",
            str(path),
            "--engine",
            engine,
            "--no-progress",
            *args,
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )

    run_import("--reason", "backfill")
    value = MetricValue.objects.get()
    path.write_text(path.read_text().replace(",5\n", ",6\n"))
    run_import()
    run_import()
    call_command(
        "revert_batch",
        str(value.batch_id),
        "--no-input",
        "--reason",
        "bad file",
        stdout=io.StringIO(),
    )
    entries = versions(value.uid)
    assert [(e.version, e.operation, e.source, e.reason) for e in entries] == [
        (1, "create", "import", "backfill"),
        (2, "update", "import", None),
        (3, "delete", "revert", "bad file"),
    ]
    assert entries[0].batch_id == value.batch_id
    assert entries[1].batch_id not in (None, value.batch_id)


def test_a_row_inserted_in_sql_by_hand_starts_its_history_as_system(organization, total_ar):
    meta = MetricValue._meta
    uid = uuid7()
    now = datetime.now(UTC)
    row = {
        "uid": uid,
        "metric": total_ar.pk,
        "context_type": "ORGANIZATION",
        "entity_uid": organization.uid,
        "time_unit": "day",
        "metric_date": now.date(),
        "value": Decimal(3),
        "timezone": "UTC",
        "metadata": {},
        "created_at": now,
        "updated_at": now,
    }
    columns = ", ".join(meta.get_field(name).column for name in row)
    params = [meta.get_field(name).get_db_prep_save(v, connection) for name, v in row.items()]
    marks = ", ".join(["%s"] * len(row))
    _raw(f"INSERT INTO {meta.db_table} ({columns}) VALUES ({marks})", params)
    [entry] = versions(uid)
    assert (entry.version, entry.operation, entry.source, entry.recorded_by_uid) == (
        1,
        "create",
        "system",
        None,
    )
    assert MetricValue.objects.get(uid=uid).version == 1


def test_export_as_of_writes_the_table_as_it_was(created, editor_client, org_url, tmp_path):
    uid = created.json()["data"]["uid"]
    tick()
    before = datetime.now(UTC)
    tick()
    editor_client.patch(f"{URL}/{uid}", {"value": 300}, format="json")
    editor_client.post(
        org_url, {"metric_uid": "total_ar", "metric_date": "2026-03-16", "value": 9}, format="json"
    )
    then, now = tmp_path / "then.csv", tmp_path / "now.csv"
    call_command(
        "export_metric_values",
        "-o",
        str(then),
        "--as-of",
        before.isoformat(),
        stderr=io.StringIO(),
    )
    call_command("export_metric_values", "-o", str(now), stderr=io.StringIO())
    assert [line.split(",")[5] for line in then.read_text().splitlines()[1:]] == ["100"]
    assert [line.split(",")[5] for line in now.read_text().splitlines()[1:]] == ["300", "9"]


def test_export_refuses_an_as_of_without_offset(db):
    with pytest.raises(CommandError, match="--as-of"):
        call_command("export_metric_values", "--as-of", "2026-03-15", stderr=io.StringIO())


def test_as_of_list_sorts_and_pages_like_the_current_list(editor_client, org_url, total_ar):
    for day, value in ((15, 30), (16, 10), (17, 20)):
        body = {"metric_uid": "total_ar", "metric_date": f"2026-03-{day}", "value": value}
        assert editor_client.post(org_url, body, format="json").status_code == 201
    tick()
    instant = datetime.now(UTC).isoformat()
    response = editor_client.get(
        org_url,
        {
            "as_of": instant,
            "start_date": "2026-03-01",
            "end_date": "2026-03-31",
            "sort": "value",
            "per_page": 2,
            "page": 2,
            "include_metadata": "true",
        },
    )
    data = response.json()["data"]
    assert [(i["value"], i["_metadata"]) for i in data["items"]] == [(30, {})]
    assert data["_meta"] == {"page": 2, "per_page": 2, "total_pages": 2, "total_items": 3}
