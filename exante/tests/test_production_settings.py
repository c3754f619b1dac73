"""Production settings: the deploy checklist passes, security headers are sent, static
files are served by whitenoise with DEBUG off, and missing secrets stop the process.

Each check runs in a fresh interpreter because settings are fixed once Django starts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SECRET = "prod-test-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP-not-real"


def production_env(tmp_path, **extra) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "STATIC_ROOT"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="exante.settings.production",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="metrics.example.com",
        EXANTE_VAR_DIR=str(tmp_path / "var"),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


_CLIENT = """
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client

call_command("collectstatic", "--noinput", verbosity=0)
# whitenoise indexes STATIC_ROOT when its middleware is built, so build the handler after.
client = Client(HTTP_HOST="metrics.example.com")
out = {}
def record(name, response):
    out[name] = {"status": response.status_code, "headers": dict(response.headers),
                 "body": response.content.decode(errors="replace")[:200000]}
record("https_health", client.get("/healthz", secure=True))
record("http_health", client.get("/healthz"))
record("http_api", client.get("/api/metrics"))
record("http_metrics", client.get("/metrics"))
record("forwarded_https", client.get("/healthz", HTTP_X_FORWARDED_PROTO="https"))
record("admin_login", client.get("/admin/login/", secure=True))
record("docs", client.get("/api/docs", secure=True))
from django.contrib.staticfiles.storage import staticfiles_storage
out["static"] = {}
for name in ("admin/css/base.css", "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"):
    url = staticfiles_storage.url(name)
    response = client.get(url, secure=True)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    out["static"][name] = {"url": url, "status": response.status_code, "size": len(body),
                           "type": response.headers.get("Content-Type"),
                           "cache": response.headers.get("Cache-Control")}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def production_responses(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("production")
    result = run([sys.executable, "-c", _CLIENT], production_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    responses = json.loads(result.stdout.strip().splitlines()[-1])
    responses["_static_root"] = str(tmp_path / "static")
    return responses


def test_deploy_checklist_passes_at_warning_level(tmp_path):
    result = run(
        [
            sys.executable,
            "manage.py",
            "check",
            "--deploy",
            "--fail-level",
            "WARNING",
        ],
        production_env(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_missing_required_setting_stops_start_up(tmp_path, missing):
    env = production_env(tmp_path)
    env[missing] = ""
    result = run([sys.executable, "manage.py", "check"], env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_security_headers_are_sent(production_responses):
    headers = production_responses["https_health"]["headers"]
    assert production_responses["https_health"]["status"] == 200
    hsts = headers["Strict-Transport-Security"]
    assert "max-age=31536000" in hsts and "includeSubDomains" in hsts and "preload" in hsts
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert production_responses["admin_login"]["headers"]["X-Frame-Options"] == "DENY"


def test_plain_http_api_is_redirected_but_probes_are_not(production_responses):
    api = production_responses["http_api"]
    assert api["status"] == 301
    assert api["headers"]["Location"].startswith("https://metrics.example.com/")
    assert production_responses["http_health"]["status"] == 200
    # /metrics is off here (404), but answered over plain HTTP for in-cluster scrapers.
    assert production_responses["http_metrics"]["status"] == 404


def test_load_balancer_https_header_is_trusted(production_responses):
    assert production_responses["forwarded_https"]["status"] == 200


def test_admin_and_docs_link_hashed_static_files(production_responses):
    # The pages link hashed file names from the manifest; each must resolve through
    # whitenoise (the same process, DEBUG off, no web server in front).
    login = production_responses["admin_login"]
    assert login["status"] == 200
    assert "/static/admin/css/base." in login["body"]
    docs = production_responses["docs"]
    assert docs["status"] == 200
    assert "swagger-ui" in docs["body"]
    static_root = Path(production_responses["_static_root"])
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    assert manifest["admin/css/base.css"] in login["body"]


def test_hashed_static_files_are_served_and_cached_forever(production_responses):
    for name, info in production_responses["static"].items():
        assert info["status"] == 200, (name, info)
        assert info["type"].startswith("text/css"), (name, info)
        assert info["size"] > 1000, (name, info)
        # whitenoise marks hashed names immutable: browsers never revalidate them.
        assert "immutable" in (info["cache"] or ""), (name, info)


_DATABASE_SETTINGS = """
import json
import django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({key: db[key] for key in ("OPTIONS", "CONN_MAX_AGE",
                                            "DISABLE_SERVER_SIDE_CURSORS")}))
"""


def database_settings(tmp_path, **env) -> dict:
    env = production_env(tmp_path, DATABASE_URL="postgres://app@db.internal:5432/exante", **env)
    result = run([sys.executable, "-c", _DATABASE_SETTINGS], env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_database_timeouts_and_defaults(tmp_path):
    db = database_settings(tmp_path)
    assert db["OPTIONS"]["connect_timeout"] == 5
    assert db["OPTIONS"]["options"] == "-c statement_timeout=30000 -c lock_timeout=0"
    assert "pool" not in db["OPTIONS"]
    assert db["CONN_MAX_AGE"] == 60
    assert db["DISABLE_SERVER_SIDE_CURSORS"] is False


def test_database_settings_follow_the_environment(tmp_path):
    db = database_settings(
        tmp_path,
        DB_CONNECT_TIMEOUT="3",
        DB_STATEMENT_TIMEOUT_MS="0",
        DB_LOCK_TIMEOUT_MS="2000",
        DB_POOL_MAX_SIZE="8",
        DB_POOL_MIN_SIZE="2",
        DB_POOL_TIMEOUT="4",
        DB_DISABLE_SERVER_SIDE_CURSORS="true",
    )
    assert db["OPTIONS"]["connect_timeout"] == 3
    assert db["OPTIONS"]["options"] == "-c statement_timeout=0 -c lock_timeout=2000"
    assert db["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 8, "timeout": 4}
    # Django refuses a pool together with persistent connections.
    assert db["CONN_MAX_AGE"] == 0
    assert db["DISABLE_SERVER_SIDE_CURSORS"] is True
