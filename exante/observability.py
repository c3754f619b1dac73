"""Access logging and Prometheus metrics for every request.

``AccessLogMiddleware`` writes one JSON line per request on the ``exante.access`` logger
(request id, principal, method, path, route, status, duration) and feeds the request
counters and latency histogram served at ``/metrics``.

Multi-process servers: gunicorn runs several worker processes, each with its own counters.
When ``PROMETHEUS_MULTIPROC_DIR`` names a directory (``exante/gunicorn.conf.py`` sets one up
and wipes it at start), prometheus-client writes every worker's samples there and
``/metrics`` aggregates them, so a scrape sees the whole server whichever worker answers.
The variable must be set before this module is imported, which is why gunicorn's config
sets it in the master process.
"""

import hmac
import logging
import os
import time

from django.conf import settings
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from exante.api.responses import error_response, require_get

access_logger = logging.getLogger("exante.access")

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "exante_http_requests_total",
    "HTTP requests answered, by route name, method and status code.",
    ["route", "method", "status"],
)
REQUEST_LATENCY = Histogram(
    "exante_http_request_duration_seconds",
    "Time from the request entering Django to the response leaving it, by route name.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
#: Metric value rows written by ingestion. ``source``: ``api`` (single create), ``bulk``
#: (the bulk endpoint), ``import`` (a management command); ``outcome``: ``created``,
#: ``updated``, ``unchanged``, ``skipped`` or ``error``. Increment through
#: :func:`record_ingested`, which fills in both labels.
INGESTED_ROWS = Counter(
    "exante_ingested_rows_total",
    "Metric value rows handled by ingestion, by source and outcome.",
    ["source", "outcome"],
)


def record_ingested(count: int = 1, *, source: str = "api", outcome: str = "created") -> None:
    """Count ``count`` ingested rows; a no-op for zero so callers need no guard."""
    if count:
        INGESTED_ROWS.labels(source=source, outcome=outcome).inc(count)


def _route(request: HttpRequest) -> str:
    """The URL pattern's name: a bounded label set, unlike raw paths full of uids."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


def _principal(request: HttpRequest) -> str:
    """Who made the request, as ``api_key:<id>``, ``user:<uid>`` or ``anonymous``.

    Only identifiers are read: never the token or key itself. DRF copies the authenticated
    user and auth object onto the Django request; a session user that nobody evaluated is
    left alone, because evaluating it would query the database (possibly down) just to log.
    """
    auth = request.__dict__.get("auth")
    if isinstance(auth, models.Model):
        # API key authentication puts the key row in ``request.auth``; a JWT is a token
        # object instead and is identified by its user below.
        return f"api_key:{getattr(auth, 'uid', None) or auth.pk}"
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return "anonymous"
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{getattr(user, 'uid', None) or user.pk}"
    return "anonymous"


class AccessLogMiddleware:
    """One structured log line and one metrics sample per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = _route(request)
        method = request.method if request.method in _KNOWN_METHODS else "OTHER"
        status = response.status_code
        REQUESTS.labels(route=route, method=method, status=str(status)).inc()
        REQUEST_LATENCY.labels(route=route, method=method).observe(elapsed)
        access_logger.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "request",
            extra={
                "principal": _principal(request),
                "method": method,
                "path": request.path,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        return response


def _registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _unauthorized(code: str, message: str) -> HttpResponse:
    response = error_response(401, code, message)
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_get
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; 404 unless ``METRICS_ENDPOINT_ENABLED``, and a bearer token
    when ``METRICS_TOKEN`` is set. Never touches the database, so it answers during an
    outage too."""
    if not settings.METRICS_ENDPOINT_ENABLED:
        return error_response(404, "not_found", "The resource was not found.")
    token = settings.METRICS_TOKEN
    if token:
        header = request.headers.get("Authorization", "")
        if not header:
            return _unauthorized("not_authenticated", "A bearer token is required.")
        scheme, _, sent = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            sent.strip().encode(), token.encode()
        ):
            return _unauthorized("authentication_failed", "The bearer token is not valid.")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
