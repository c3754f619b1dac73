"""The success envelope, built in one place for every DRF response."""

from rest_framework.renderers import BaseRenderer

from exante.json import dumps


def is_error_envelope(data) -> bool:
    return isinstance(data, dict) and data.get("status") == "error" and "code" in data


class EnvelopeJSONRenderer(BaseRenderer):
    """Wraps ``data`` as ``{status, status_code, message, data}``; errors arrive already
    shaped by the exception handler and are written as they are."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        response = (renderer_context or {}).get("response")
        status_code = response.status_code if response is not None else 200
        if is_error_envelope(data):
            return dumps(data)
        if status_code >= 400:
            # Only reachable if something bypassed the exception handler.
            return dumps(
                {
                    "status": "error",
                    "status_code": status_code,
                    "message": "The request failed.",
                    "code": "error",
                    "errors": None,
                    "data": data,
                }
            )
        return dumps(
            {
                "status": "success",
                "status_code": status_code,
                "message": "Created" if status_code == 201 else "Success",
                "data": {} if data is None else data,
            }
        )
