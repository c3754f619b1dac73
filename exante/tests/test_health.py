import pytest
from django.db import OperationalError, connection


@pytest.mark.django_db
def test_healthz_answers_without_auth(anon_client):
    response = anon_client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "success"


@pytest.mark.django_db
def test_readyz_is_200_when_database_answers(anon_client):
    response = anon_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["data"] == {"database": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_envelope_when_database_is_unreachable(anon_client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = anon_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert body["status_code"] == 503
    assert int(response["Retry-After"]) > 0
