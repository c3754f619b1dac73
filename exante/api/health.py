"""Liveness and readiness probes for load balancers and orchestrators."""

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from .responses import require_get, service_unavailable_response


@never_cache
@require_get
def healthz(request) -> HttpResponse:
    """The process is up and serving; does not touch the database."""
    return JsonResponse({"status": "success", "status_code": 200, "message": "ok", "data": {}})


@never_cache
@require_get
def readyz(request) -> HttpResponse:
    """The database answers a query; 503 with the envelope when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # Whatever the driver raised, the answer is the same: not ready. Drop the broken
        # connection so the next probe reconnects.
        connection.close_if_unusable_or_obsolete()
        return service_unavailable_response()
    return JsonResponse(
        {"status": "success", "status_code": 200, "message": "ready", "data": {"database": "ok"}}
    )
