"""Writes through the API are counted in the Prometheus ingestion counter."""

import pytest

from exante.observability import INGESTED_ROWS


def counted(source: str, outcome: str) -> float:
    return INGESTED_ROWS.labels(source=source, outcome=outcome)._value.get()


@pytest.mark.django_db
def test_single_create_counts_one_row(editor_client, organization, total_ar):
    before = counted("api", "created")
    url = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
    body = {"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1}
    assert editor_client.post(url, body, format="json").status_code == 201
    assert editor_client.post(url, body, format="json").status_code == 409
    assert counted("api", "created") == before + 1


@pytest.mark.django_db
def test_bulk_counts_written_rows_but_not_dry_runs(editor_client, organization, total_ar):
    before = counted("bulk", "created")
    items = [
        {
            "context_type": "ORGANIZATION",
            "entity_uid": str(organization.uid),
            "metric_uid": "total_ar",
            "metric_date": f"2026-03-{day:02d}",
            "value": day,
        }
        for day in range(1, 4)
    ]
    dry = {"on_conflict": "skip", "dry_run": True, "items": items}
    assert editor_client.post("/api/metrics/values/bulk", dry, format="json").status_code == 200
    assert counted("bulk", "created") == before
    real = {"on_conflict": "skip", "items": items}
    assert editor_client.post("/api/metrics/values/bulk", real, format="json").status_code == 200
    assert counted("bulk", "created") == before + 3


@pytest.mark.django_db
def test_import_command_counts_created_rows(tmp_path, organization, total_ar):
    from io import StringIO

    from django.core.management import call_command

    path = tmp_path / "values.csv"
    path.write_text(
        "context_type,entity_uid,metric_uid,time_unit,metric_date,value\n"
        f"ORGANIZATION,{organization.uid},total_ar,day,2026-03-01,10\n"
        f"ORGANIZATION,{organization.uid},total_ar,day,2026-03-02,11\n"
    )
    before = counted("import", "created")
    call_command("import_metric_values", str(path), stdout=StringIO(), stderr=StringIO())
    assert counted("import", "created") == before + 2
