"""Access log lines, request ids in logs, and the Prometheus endpoint."""

import copy
import json
import logging
import logging.config
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test import RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from conftest import PASSWORD
from exante import observability
from exante.api.middleware import RequestIDLogFilter
from metrics.api.views import MetricDefinitionViewSet


class _Collect(logging.Handler):
    """Formats records with the production JSON formatter and keeps the lines."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        # The configurator consumes the dict it is given: work on a copy of the settings.
        config = copy.deepcopy(settings.LOGGING)
        configurator = logging.config.DictConfigurator(config)
        self.setFormatter(configurator.configure_formatter(config["formatters"]["json"]))
        self.addFilter(RequestIDLogFilter())

    def emit(self, record):
        self.lines.append(self.format(record))

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def log_lines():
    """JSON lines written by the ``exante`` loggers (access log, API errors) and by Django's
    own request logger."""
    handler = _Collect()
    loggers = [logging.getLogger(name) for name in ("exante", "django.request")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    yield handler
    for logger, level in zip(loggers, previous, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def access_records(handler: _Collect) -> list[dict]:
    return [record for record in handler.records() if record["logger"] == "exante.access"]


@pytest.mark.django_db
class TestAccessLog:
    def test_one_json_line_per_request_with_every_field(self, staff, staff_client, log_lines):
        response = staff_client.get("/api/metrics?page=1", HTTP_X_REQUEST_ID="trace-42")
        assert response.status_code == 200
        (line,) = access_records(log_lines)
        assert line["request_id"] == "trace-42"
        assert line["principal"] == f"user:{staff.uid}"
        assert line["method"] == "GET"
        assert line["path"] == "/api/metrics"
        assert line["route"] == "metric-definition-list"
        assert line["status"] == 200
        assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
        assert line["level"] == "INFO"

    def test_generated_request_id_is_the_one_logged(self, anon_client, log_lines):
        response = anon_client.get("/healthz")
        (line,) = access_records(log_lines)
        assert line["request_id"] == response["X-Request-ID"]
        assert line["principal"] == "anonymous"

    def test_failed_authentication_is_logged_as_anonymous_401(self, anon_client, log_lines):
        response = anon_client.get("/api/metrics", HTTP_AUTHORIZATION="Bearer not-a-jwt")
        assert response.status_code == 401
        (line,) = access_records(log_lines)
        assert line["status"] == 401
        assert line["principal"] == "anonymous"
        assert "not-a-jwt" not in log_lines.lines[0]

    def test_unknown_route_has_a_bounded_route_label(self, anon_client, log_lines):
        anon_client.get("/no/such/path/12345")
        (line,) = access_records(log_lines)
        assert line["route"] == "unmatched"
        assert line["status"] == 404

    def test_no_password_token_or_query_string_in_the_log(self, anon_client, staff, log_lines):
        login = anon_client.post(
            "/api/auth/token", {"email": staff.email, "password": PASSWORD}, format="json"
        )
        assert login.status_code == 200
        tokens = login.json()["data"]
        anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        assert anon_client.get("/api/metrics?search=hush-query").status_code == 200
        text = "\n".join(log_lines.lines)
        assert len(access_records(log_lines)) == 2
        for secret in (PASSWORD, tokens["access"], tokens["refresh"], "hush-query"):
            assert secret not in text
        assert access_records(log_lines)[1]["principal"] == f"user:{staff.uid}"

    def test_server_errors_are_logged_as_warnings(self, staff_client, log_lines, monkeypatch):
        def outage(self, request, *args, **kwargs):
            raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

        monkeypatch.setattr(MetricDefinitionViewSet, "list", outage)
        assert staff_client.get("/api/metrics").status_code == 503
        (line,) = access_records(log_lines)
        assert (line["status"], line["level"]) == (503, "WARNING")

    def test_every_log_line_of_a_request_carries_its_id(self, staff_client, log_lines, monkeypatch):
        def explode(self, request, *args, **kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(MetricDefinitionViewSet, "list", explode)
        response = staff_client.get("/api/metrics", HTTP_X_REQUEST_ID="req-err-1")
        assert response.status_code == 500
        records = log_lines.records()
        loggers = {record["logger"] for record in records}
        assert loggers >= {"exante.api", "exante.access", "django.request"}
        assert {record["request_id"] for record in records} == {"req-err-1"}


class TestPrincipal:
    def test_api_key_row_is_named_by_its_id_not_its_secret(self, db, organization, staff):
        # Any model row standing in ``request.auth`` is treated as the API key that
        # authenticated the request; only its public id is logged.
        request = RequestFactory().get("/api/metrics")
        request.user = staff
        request.auth = organization
        assert observability._principal(request) == f"api_key:{organization.uid}"

    def test_jwt_is_identified_by_its_user(self, staff):
        request = RequestFactory().get("/")
        request.user = staff
        request.auth = "eyJ.raw.token"
        assert observability._principal(request) == f"user:{staff.uid}"

    def test_unevaluated_session_user_is_not_loaded(self, monkeypatch):
        from django.utils.functional import SimpleLazyObject

        def load():
            raise AssertionError("the logger must not load the session user")

        request = RequestFactory().get("/")
        request.user = SimpleLazyObject(load)
        assert observability._principal(request) == "anonymous"


def sample_value(text: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.mark.django_db
class TestMetricsEndpoint:
    def test_off_by_default_is_a_404_envelope(self, anon_client):
        assert settings.METRICS_ENDPOINT_ENABLED is False
        response = anon_client.get("/metrics")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_counts_requests_by_route_and_status(self, anon_client, settings):
        settings.METRICS_ENDPOINT_ENABLED = True
        labels = {"route": "healthz", "method": "GET", "status": "200"}
        before = sample_value(
            anon_client.get("/metrics").content.decode(), "exante_http_requests_total", **labels
        )
        anon_client.get("/healthz")
        anon_client.get("/healthz")
        response = anon_client.get("/metrics")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        text = response.content.decode()
        assert sample_value(text, "exante_http_requests_total", **labels) == before + 2
        assert (
            sample_value(
                text,
                "exante_http_request_duration_seconds_count",
                route="healthz",
                method="GET",
            )
            >= 2
        )

    def test_token_is_required_when_configured(self, anon_client, settings):
        settings.METRICS_ENDPOINT_ENABLED = True
        settings.METRICS_TOKEN = "scrape-secret"
        missing = anon_client.get("/metrics")
        assert missing.status_code == 401
        assert missing.json()["code"] == "not_authenticated"
        assert missing["WWW-Authenticate"].startswith("Bearer")
        wrong = anon_client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
        assert (wrong.status_code, wrong.json()["code"]) == (401, "authentication_failed")
        right = anon_client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
        assert right.status_code == 200
        assert b"exante_http_requests_total" in right.content

    def test_ingestion_counter_is_exposed(self, anon_client, settings):
        settings.METRICS_ENDPOINT_ENABLED = True
        labels = {"source": "bulk", "outcome": "created"}
        name = "exante_ingested_rows_total"
        before = sample_value(anon_client.get("/metrics").content.decode(), name, **labels)
        observability.record_ingested(7, source="bulk", outcome="created")
        observability.record_ingested(0, source="bulk", outcome="created")
        after = sample_value(anon_client.get("/metrics").content.decode(), name, **labels)
        assert after == before + 7

    def test_answers_while_the_database_is_down(self, anon_client, settings, monkeypatch):
        settings.METRICS_ENDPOINT_ENABLED = True

        def broken_cursor(*args, **kwargs):
            raise OperationalError("could not connect to server")

        monkeypatch.setattr(connection, "cursor", broken_cursor)
        assert anon_client.get("/readyz").status_code == 503
        assert anon_client.get("/metrics").status_code == 200


_WORKER = """
import sys
from exante import observability
observability.record_ingested(int(sys.argv[1]), source="import", outcome="created")
observability.REQUESTS.labels(route="healthz", method="GET", status="200").inc()
"""

_SCRAPER = """
from prometheus_client import generate_latest
from exante import observability
print(generate_latest(observability._registry()).decode())
"""


def test_multiprocess_mode_sums_every_worker(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR set (gunicorn), a scrape adds up all processes."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in ("3", "4"):
        subprocess.run([sys.executable, "-c", _WORKER, count], env=env, check=True, cwd=".")
    scraped = subprocess.run(
        [sys.executable, "-c", _SCRAPER], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert (
        sample_value(scraped, "exante_ingested_rows_total", source="import", outcome="created") == 7
    )
    assert sample_value(scraped, "exante_http_requests_total", route="healthz") == 2


@pytest.mark.django_db
def test_api_key_requests_are_logged_by_key_id_never_the_key(organization, editor, log_lines):
    from rest_framework.test import APIClient

    from entities.services import api_key_create

    api_key, raw = api_key_create(user=editor, organization=organization, name="logging")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/metrics").status_code == 200
    (line,) = access_records(log_lines)
    assert line["principal"] == f"api_key:{api_key.uid}"
    assert raw not in "\n".join(log_lines.lines)
    assert raw[8:] not in "\n".join(log_lines.lines)


class TestGunicornAccessLog:
    """gunicorn's own access line (``GUNICORN_ACCESS_LOG``): JSON fields, no secrets."""

    @pytest.fixture
    def access_logger(self, tmp_path, monkeypatch):
        import runpy

        from gunicorn.config import Config

        # Set first, so loading the config neither creates nor exports a directory of its own.
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        module = runpy.run_path(str(settings.BASE_DIR / "exante" / "gunicorn.conf.py"))

        def make(accesslog):
            config = Config()
            config.set("accesslog", accesslog)
            logger = module["JSONAccessLogger"](config)
            records = []
            handler = logging.Handler()
            handler.emit = records.append
            logger.access_log.addHandler(handler)
            return logger, records

        yield make
        for name in ("gunicorn.access", "gunicorn.error"):
            logging.getLogger(name).handlers.clear()

    @staticmethod
    def call(logger):
        from datetime import timedelta
        from types import SimpleNamespace

        response = SimpleNamespace(
            status="201 Created", headers=[("X-Request-ID", "rid-7")], sent=321
        )
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/metrics",
            "QUERY_STRING": "token=hush-query",
            "HTTP_AUTHORIZATION": "Bearer hush-token",
            "REMOTE_ADDR": "10.0.0.9",
        }
        logger.access(response, None, environ, timedelta(milliseconds=12.5))

    def test_fields_without_query_string_or_credentials(self, access_logger):
        logger, records = access_logger("-")
        self.call(logger)
        (record,) = records
        fields = {key: getattr(record, key) for key in ("request_id", "method", "path", "status")}
        assert fields == {
            "request_id": "rid-7",
            "method": "POST",
            "path": "/api/metrics",
            "status": 201,
        }
        assert (record.bytes, record.duration_ms, record.remote_addr) == (321, 12.5, "10.0.0.9")
        assert "hush" not in repr(record.__dict__)

    def test_off_unless_asked_for(self, access_logger):
        logger, records = access_logger(None)
        self.call(logger)
        assert records == []
