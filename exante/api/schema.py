"""OpenAPI pieces shared by every endpoint: envelopes and the documented error responses."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from exante.fields import StrictFieldsMixin

from .idempotency import EXEMPT_PREFIX, HEADER, WRITE_METHODS

ERROR_DESCRIPTIONS = {
    "400": "Invalid input (`validation_error`); `errors` maps each field to its messages. "
    "Every body is read strictly, the same way on every endpoint: UTF-8 JSON only; a string "
    "holding bytes that are not UTF-8, a lone surrogate escape (`\\ud800`) or a NUL, a key "
    "given twice in one object, nesting deeper than 32 levels, or an integer literal of "
    "more than 40 digits is refused naming the top-level field that holds it; "
    "`non_field_errors` only when the bytes are not JSON at all. On a write, an "
    "`Idempotency-Key` header that is not 1 to 255 printable ASCII characters is "
    "`invalid_idempotency_key`, naming the header.",
    "401": "Missing (`not_authenticated`) or invalid, expired or revoked credentials "
    "(`authentication_failed`); sent with `WWW-Authenticate: Bearer`.",
    "403": "Authenticated, but the role or API key scope does not allow this "
    "(`permission_denied`).",
    "404": "Not found, or not visible to the caller (`not_found`); the two are "
    "indistinguishable by design. A path segment that cannot be an identifier (a NUL, more "
    "than 255 characters) is the same 404, answered before any lookup.",
    "409": "Conflicts with existing data.",
    "422": "The `Idempotency-Key` was used for a different request (method, path, query or "
    "body) within its 24 hours (`idempotency_key_mismatch`); nothing ran.",
    "411": "A `Transfer-Encoding: chunked` body that the server could not read whole "
    "(`length_required`); send it with `Content-Length`. Behind gunicorn chunked bodies "
    "are read whole.",
    "413": "The request body is larger than the limit (`payload_too_large`): "
    "`API_MAX_BODY_BYTES` (default 1 MiB), or `API_MAX_BULK_BODY_BYTES` (default 16 MiB) "
    "for bulk calls; refused from `Content-Length` before reading, else while reading.",
    "414": "The URL's path and query are longer than `API_MAX_URL_LENGTH` (default 4096 "
    "characters) (`uri_too_long`).",
    "415": "The body is not `application/json`, or names a `charset` other than UTF-8 "
    "(`unsupported_media_type`).",
    "429": "Rate limit exceeded (`throttled`); `Retry-After` says when to retry.",
    "500": "Unexpected server error (`server_error`); no details are disclosed.",
    "503": "The database is unreachable (`service_unavailable`); `Retry-After` is set.",
}


class ErrorEnvelopeSerializer(serializers.Serializer):
    """The error envelope."""

    status = serializers.ChoiceField(choices=["error"])
    status_code = serializers.IntegerField(help_text="Always equals the HTTP status.")
    message = serializers.CharField(help_text="One human sentence.")
    code = serializers.CharField(help_text="A stable machine-readable code.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        allow_null=True,
        help_text="Field → messages, on 400 only; `non_field_errors` for cross-field rules.",
    )
    data = serializers.JSONField(
        allow_null=True, help_text="Extra facts (the existing `uid` on 409), else null."
    )


def error_response(status_code: int | str, description: str | None = None) -> OpenApiResponse:
    """An error response for ``extend_schema(responses=...)``."""
    return OpenApiResponse(
        response=ErrorEnvelopeSerializer,
        description=description or ERROR_DESCRIPTIONS[str(status_code)],
    )


def success_envelope(data_schema: dict) -> dict:
    return {
        "type": "object",
        "required": ["status", "status_code", "message", "data"],
        "properties": {
            "status": {"type": "string", "enum": ["success"]},
            "status_code": {"type": "integer", "description": "Equals the HTTP status."},
            "message": {"type": "string"},
            "data": data_schema,
        },
    }


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes a retry safe: the first request with a key runs, and for 24 hours a repeat "
        "of it (same method, path, query and body) gets the stored answer (status, body "
        "byte for byte, `Location`, `ETag`) with `Idempotent-Replayed: true`, running "
        "nothing. The key belongs to the user (an API key acts for its user). 1 to 255 "
        "printable ASCII characters, else 400 `invalid_idempotency_key`. Reused for "
        "another request → 422 `idempotency_key_mismatch`; repeated while the first still "
        "runs → 409 `idempotency_in_progress` with `Retry-After`. Answers 5xx, 401 and "
        "429 are not stored. See docs/idempotency.md."
    ),
)

#: Added to an operation's 409 when it takes an ``Idempotency-Key``.
IDEMPOTENCY_409 = (
    "`idempotency_in_progress`: a request with the same `Idempotency-Key` is still "
    "running; retry after `Retry-After` seconds."
)


class EnvelopeAutoSchema(AutoSchema):
    """Wraps every 2xx body in the success envelope and adds the error responses each
    operation can produce, so no view has to repeat them."""

    def _get_response_for_code(
        self, serializer, status_code, media_types=None, direction="response"
    ):
        response = super()._get_response_for_code(serializer, status_code, media_types, direction)
        if str(status_code).startswith("2"):
            for media in response.get("content", {}).values():
                if "schema" in media:
                    media["schema"] = success_envelope(media["schema"])
        return response

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(force_instance(serializer), StrictFieldsMixin):
            # Unknown body fields are a 400; say so, so that clients and schema
            # fuzzers know an extra field is an invalid request, not an ignored one.
            schema["additionalProperties"] = False
        return schema

    def _requires_auth(self) -> bool:
        permissions = self.view.get_permissions()
        return not all(isinstance(permission, AllowAny) for permission in permissions)

    def _api_key_scopes(self) -> list[str] | None:
        """The scopes an API key needs here (from the permission classes' ``required_scope``),
        or ``None`` when API keys are refused on this operation."""
        scopes = []
        for permission in self.view.get_permissions():
            required = getattr(permission, "required_scope", None)
            if required is None:
                continue
            scope = required(self.method, self.view)
            if scope is None:
                return None
            scopes.append(scope)
        return scopes

    def get_auth(self):
        auth = super().get_auth()
        if self._requires_auth() and self._api_key_scopes() is None:
            # Keys are refused here (403): document the JWT scheme only.
            auth = [requirement for requirement in auth if "apiKeyAuth" not in requirement]
        return auth

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None or not self._requires_auth():
            return operation
        # Here rather than in get_description(), which extend_schema(description=...)
        # replaces: every operation states what an API key needs.
        scopes = self._api_key_scopes()
        if scopes is None:
            note = "API keys are not accepted here (403); authenticate with a JWT."
        elif scopes:
            names = ", ".join(f"`{scope}`" for scope in sorted(set(scopes)))
            note = f"With an API key, needs the scope {names}."
        else:
            return operation
        description = operation.get("description", "")
        operation["description"] = f"{description}\n\n{note}" if description else note
        return operation

    def _takes_idempotency_key(self) -> bool:
        return (
            self.method in WRITE_METHODS
            and self._requires_auth()
            and not self.path.startswith(EXEMPT_PREFIX)
        )

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if self._takes_idempotency_key():
            parameters = [*parameters, IDEMPOTENCY_KEY_PARAMETER]
        return parameters

    def _takes_query_parameters(self) -> bool:
        """A query parameter can be malformed: such an operation documents its 400."""
        return any(parameter.get("in") == "query" for parameter in self._get_parameters())

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if self.method == "DELETE" and "204" in responses:
            # Deletes answer 200 with an empty object in the envelope.
            del responses["204"]
            responses["200"] = self._get_response_for_code(
                {"type": "object", "additionalProperties": False}, "200", direction=direction
            )
        codes = ["414", "500", "503"]
        has_body = self.method in ("POST", "PUT", "PATCH")
        if has_body:
            codes += ["400", "411", "413", "415"]
        elif self._is_list_view() or self._takes_query_parameters():
            codes.append("400")
        if self._requires_auth():
            codes += ["401", "403", "429"]
        elif getattr(self.view, "throttle_scope", None):
            # Public but rate-limited per client IP (the /api/auth/* views).
            codes.append("429")
        if "{" in self.path:
            codes.append("404")
        keyed = self._takes_idempotency_key()
        if keyed:
            codes += ["400", "422"]
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(error_response(code), code)
        if keyed:
            conflict = responses.get("409")
            if conflict is None:
                responses["409"] = self._get_response_for_code(
                    error_response(409, IDEMPOTENCY_409), "409"
                )
            else:
                conflict["description"] = f"{conflict['description']} Or {IDEMPOTENCY_409}"
        return dict(sorted(responses.items()))


class BearerAuthScheme(OpenApiAuthenticationExtension):
    """Documents ``Authorization: Bearer`` for JWT access tokens."""

    target_class = "exante.api.authentication.BearerJWTAuthentication"
    name = "bearerAuth"
    match_subclasses = True

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT access token from `POST /api/auth/token`.",
        }


def strip_optional_trailing_slash(endpoints, **kwargs):
    """Routes are written ``^path/?$`` so both spellings work; document the canonical one
    (no trailing slash)."""
    return [
        (path.rstrip("/") if path != "/" else path, regex, method, callback)
        for path, regex, method, callback in endpoints
    ]


class ApiKeyAuthScheme(OpenApiAuthenticationExtension):
    """Documents API keys (``Authorization: Bearer ex_live_…``) as a second scheme."""

    target_class = "entities.api.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ex_live_ API key",
            "description": (
                "An API key from `POST /api/api-keys`, sent as `Authorization: Bearer "
                "ex_live_…`. It acts for its user inside its one organization and only "
                "within its scopes: `metrics:read`, `metrics:write`, `metrics:admin`, "
                "`entities:read`, `entities:write`. A missing scope is a 403."
            ),
        }


def _enum_varname(value: str) -> str:
    """``-metric_date`` → ``METRIC_DATE_DESC``, ``+name`` → ``NAME_ASC``, ``metrics:read`` →
    ``METRICS_READ``."""
    suffix = {"-": "_DESC", "+": "_ASC"}.get(value[:1], "")
    text = value[1:] if suffix else value
    name = "".join(char if char.isalnum() else "_" for char in text).strip("_").upper()
    return f"{name or 'VALUE'}{suffix}"


def add_enum_varnames(result, **kwargs):
    """Names for string enums whose values are not identifiers (sort fields, scopes), as
    ``x-enum-varnames``, so generated clients get ``METRIC_DATE_DESC`` rather than
    ``VALUE_7``. Enums of plain identifiers already name themselves."""

    def visit(node):
        if isinstance(node, dict):
            values = node.get("enum")
            if (
                isinstance(values, list)
                and values
                and all(isinstance(value, str) for value in values)
                and not all(value.isidentifier() for value in values)
            ):
                names = [_enum_varname(value) for value in values]
                if len(set(names)) == len(names):
                    node["x-enum-varnames"] = names
            for child in node.values():
                visit(child)
        elif isinstance(node, list):
            for child in node:
                visit(child)

    visit(result)
    return result
