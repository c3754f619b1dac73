"""The FLOOR for the create benchmark: the least a create can do on this stack.

It verifies the same JWT (signature and expiry; no user row is read) and inserts the row
with ONE ``INSERT … SELECT … ON CONFLICT DO NOTHING`` (the metric uid resolved inside it),
served with no middleware (``bench/floor_settings.py``). No DRF, no validation beyond JSON
parsing, no visibility or permission check, no envelope renderer: what the real endpoint
costs above this is the price of its checks.
"""

import json

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from uuid6 import uuid7

_jwt = JWTAuthentication()

_INSERT = """
INSERT INTO metrics_metricvalue
    (uid, metric_id, context_type, entity_uid, time_unit, metric_date, value, timezone,
     metadata, created_at, updated_at)
SELECT %s, d.id, %s, %s, %s, %s, %s, %s, %s, now(), now()
FROM metrics_metricdefinition d WHERE d.uid = %s
ON CONFLICT (entity_uid, metric_id, time_unit, metric_date) DO NOTHING
RETURNING uid
"""


@csrf_exempt
def floor_create(request, context_type, entity_uid):
    header = _jwt.get_header(request)
    raw = _jwt.get_raw_token(header) if header else None
    if raw is None:
        return HttpResponse(status=401)
    try:
        _jwt.get_validated_token(raw)
    except (InvalidToken, TokenError):
        return HttpResponse(status=401)
    body = json.loads(request.body)
    uid = uuid7()
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            [
                uid,
                context_type,
                entity_uid,
                body.get("time_unit", "day"),
                body["metric_date"],
                body["value"],
                body.get("timezone") or "UTC",
                json.dumps(body.get("_metadata") or {}),
                body["metric_uid"],
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return HttpResponse(status=409)
    return JsonResponse({"uid": str(uid)}, status=201)
