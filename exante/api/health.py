"""Liveness and readiness probes for load balancers and orchestrators."""

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from exante.db_router import replica_configured, replica_state

from .responses import require_get, service_unavailable_response


@never_cache
@require_get
def healthz(request) -> HttpResponse:
    """The process is up and serving; does not touch the database."""
    return JsonResponse({"status": "success", "status_code": 200, "message": "ok", "data": {}})


@never_cache
@require_get
def readyz(request) -> HttpResponse:
    """The database answers a query; 503 with the envelope when it does not. A configured
    replica's state (ok, lagging, unreachable) is reported but never fails the probe: reads
    fall back to the primary without it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # Whatever the driver raised, the answer is the same: not ready. Drop the broken
        # connection so the next probe reconnects.
        connection.close_if_unusable_or_obsolete()
        return service_unavailable_response()
    data = {"database": "ok"}
    if replica_configured():
        data["replica"] = replica_state()
    return JsonResponse({"status": "success", "status_code": 200, "message": "ready", "data": data})
