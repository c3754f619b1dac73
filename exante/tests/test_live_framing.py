"""Request framing through the real server: a chunked body and an overlong URL sent over a
socket to gunicorn (the test client cannot show what the server hands Django)."""

import http.client
import json
import socket

import pytest

EMAIL = "editor@demo.exante.test"
PASSWORD = "demo-editor-pass"


class Live:
    def __init__(self, port: int):
        self.port = port
        self.token = ""
        self.value_uid = ""

    def request(self, method: str, path: str, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            conn.request(method, path, None if body is None else json.dumps(body), headers)
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
def live(demo_server):
    """The demo server, its editor logged in, and a value of their own to change (on a date
    the demo data leaves free; deleted afterwards)."""
    server = Live(demo_server.port)
    _, body = server.request("POST", "/api/auth/token", {"email": EMAIL, "password": PASSWORD})
    server.token = json.loads(body)["data"]["access"]
    _, body = server.request("GET", "/api/organizations")
    organization = json.loads(body)["data"]["items"][0]["uid"]
    status, body = server.request(
        "POST",
        f"/api/metrics/values/ORGANIZATION/{organization}",
        {"metric_uid": "dso", "metric_date": "2023-01-15", "value": 5},
    )
    assert status == 201, body
    server.value_uid = json.loads(body)["data"]["uid"]
    yield server
    server.request("DELETE", f"/api/metrics/values/{server.value_uid}")


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
