"""JSON request parsing: exact decimals, no NaN/Infinity, and a body size limit."""

import json
from decimal import Decimal

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


class StrictJSONParser(BaseParser):
    """Parses JSON numbers with a fraction or exponent as ``Decimal`` (never a float, so
    ``0.1`` stays ``0.1``) and rejects the non-standard ``NaN``/``Infinity`` literals.

    Views may set ``max_body_bytes``; the default is ``API_MAX_BODY_BYTES``.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        view = (parser_context or {}).get("view")
        limit = getattr(view, "max_body_bytes", None) or settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        if not raw.strip():
            return {}
        try:
            text = raw.decode("utf-8")
            return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ParseError(f"The request body is not valid JSON: {exc}") from exc
