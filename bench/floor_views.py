"""The FLOOR for the create benchmark: the least a create can do on this stack.

It checks the same JWT the same way (simplejwt: signature, expiry, then the user row) and
inserts the row with ONE SQL statement (the metric uid resolved inside it). No DRF, no
validation beyond JSON parsing, no visibility or permission check, no envelope renderer:
what the real endpoint costs above this is the price of its checks.
"""

import json

from django.db import IntegrityError, connection
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
"""


@csrf_exempt
def floor_create(request, context_type, entity_uid):
    header = _jwt.get_header(request)
    raw = _jwt.get_raw_token(header) if header else None
    if raw is None:
        return HttpResponse(status=401)
    try:
        user = _jwt.get_user(_jwt.get_validated_token(raw))
    except (InvalidToken, TokenError):
        return HttpResponse(status=401)
    if not user.is_active:
        return HttpResponse(status=401)
    body = json.loads(request.body)
    uid = uuid7()
    try:
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
    except IntegrityError:
        return HttpResponse(status=409)
    return JsonResponse({"uid": str(uid)}, status=201)
