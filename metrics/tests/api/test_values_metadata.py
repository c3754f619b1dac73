"""``_metadata`` holds any JSON object, fractional numbers included."""

import pytest

from metrics.models import MetricValue


@pytest.fixture
def url(organization):
    return f"/api/metrics/values/ORGANIZATION/{organization.uid}"


@pytest.mark.django_db
def test_fractional_numbers_in_metadata_are_stored(editor_client, total_ar, url):
    body = {
        "metric_uid": "total_ar",
        "metric_date": "2026-03-15",
        "value": 100,
        "_metadata": {"rate": 0.5, "nested": {"weights": [1.25, 2, -0.001]}},
    }
    response = editor_client.post(url, body, format="json")
    assert response.status_code == 201, response.content
    stored = MetricValue.objects.get().metadata
    assert stored == {"rate": 0.5, "nested": {"weights": [1.25, 2, -0.001]}}


@pytest.mark.django_db
def test_patch_replaces_metadata_with_fractional_numbers(editor_client, total_ar, url):
    created = editor_client.post(
        url, {"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1}, format="json"
    ).json()["data"]
    response = editor_client.patch(
        f"/api/metrics/values/{created['uid']}", {"_metadata": {"ratio": 0.25}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["data"]["_metadata"] == {"ratio": 0.25}


@pytest.mark.django_db
def test_metadata_number_too_large_for_storage_is_400(editor_client, total_ar, url):
    raw = (
        '{"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 1, '
        '"_metadata": {"huge": 1e400}}'
    )
    response = editor_client.post(url, raw, content_type="application/json")
    assert response.status_code == 400
    assert "_metadata" in response.json()["errors"]
    assert not MetricValue.objects.exists()
