"""Requests fired at a live server at the same instant, each over its own connection: how
the race tests make the database, not the order of arrival, decide."""

import http.client
import json
import threading
from urllib.parse import urlsplit


def fire_together(base_url: str, requests: list[dict]) -> list[tuple[int, dict, bytes]]:
    """Send every request (``method``, ``path``, ``headers``, ``body`` as JSON) at once:
    all connections are open before a barrier releases them. Returns ``(status, headers,
    raw body)`` per request, in order; a request that failed re-raises its error here."""
    barrier = threading.Barrier(len(requests))
    answers: list[object] = [None] * len(requests)
    parts = urlsplit(base_url)

    def send(index: int, request: dict) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.connect()
            barrier.wait()
            connection.request(
                request.get("method", "POST"),
                request["path"],
                body=json.dumps(request["body"]),
                headers={"Content-Type": "application/json", **request.get("headers", {})},
            )
            response = connection.getresponse()
            answers[index] = (response.status, dict(response.getheaders()), response.read())
        except BaseException as exc:  # re-raised below: a thread must not fail silently
            answers[index] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=(index, request))
        for index, request in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return answers
