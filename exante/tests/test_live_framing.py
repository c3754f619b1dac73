"""Request framing through the real server: a chunked body and an overlong URL sent over a
socket to gunicorn (the test client cannot show what the server hands Django)."""

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "framing@exante.test"
PASSWORD = "framing-pass-1234"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Live:
    def __init__(self, port: int):
        self.port = port
        self.token = ""

    def request(self, method: str, path: str, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = {"Content-Type": "application/json", **(headers or {})}
            if self.token:
                sent["Authorization"] = f"Bearer {self.token}"
            conn.request(method, path, None if body is None else json.dumps(body), sent)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def raw(self, data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """gunicorn with the project's config on a fresh SQLite file, a staff user logged in,
    and one value to change."""
    directory = tmp_path_factory.mktemp("framing")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "exante.settings.test",
        "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
        "EXANTE_VAR_DIR": str(directory / "var"),
        "DJANGO_SUPERUSER_EMAIL": EMAIL,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }
    python = sys.executable
    for args in (["migrate", "--noinput", "-v0"], ["createsuperuser", "--noinput"]):
        subprocess.run(
            [python, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
        )
    port = _free_port()
    log_path = directory / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(python).parent / "gunicorn"), "-c", "exante/gunicorn.conf.py", "exante.wsgi"],
            cwd=ROOT,
            env={**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Live(port)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if server.request("GET", "/healthz")[0] == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"gunicorn did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        _, body = server.request("POST", "/api/auth/token", {"email": EMAIL, "password": PASSWORD})
        server.token = json.loads(body)["data"]["access"]
        status, body = server.request("POST", "/api/organizations", {"name": "Framing"})
        assert status == 201, body
        organization = json.loads(body)["data"]["uid"]
        status, body = server.request(
            "POST", "/api/metrics", {"uid": "framing_count", "name": "Framing count"}
        )
        assert status == 201, body
        status, body = server.request(
            "POST",
            f"/api/metrics/values/ORGANIZATION/{organization}",
            {"metric_uid": "framing_count", "metric_date": "2026-03-01", "value": 5},
        )
        assert status == 201, body
        server.value_uid = json.loads(body)["data"]["uid"]
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _chunked(body: bytes, size: int = 4) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def test_a_chunked_patch_through_gunicorn_changes_the_value(live):
    head = (
        f"PATCH /api/metrics/values/{live.value_uid} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Authorization: Bearer {live.token}\r\n"
        "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    answer = live.raw(head + _chunked(b'{"value": 7}'))
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK", answer[:500]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["data"]["value"] == 7
    status, body = live.request("GET", f"/api/metrics/values/{live.value_uid}")
    assert (status, json.loads(body)["data"]["value"]) == (200, 7)


def test_an_overlong_url_through_gunicorn_is_414_in_the_envelope(live):
    status, body = live.request("GET", "/api/metrics?search=" + "x" * 6000)
    assert status == 414
    envelope = json.loads(body)
    assert (envelope["status"], envelope["code"]) == ("error", "uri_too_long")
