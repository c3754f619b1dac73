"""``Authorization: Bearer ex_live_…``: API keys, the integrations' credential.

Keys and JWTs travel in the same header. ``ApiKeyAuthentication`` runs first and claims
only tokens with the ``ex_live_`` prefix, so the JWT class never tries to decode a key (and
a key is never reported as a malformed JWT).
"""

import hmac
import re

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from exante.api.authentication import WWW_AUTHENTICATE

from ..models import API_KEY_PREFIX, ApiKey, api_key_lookup, hash_api_key
from ..services import api_key_touch

#: What follows ``ex_live_``: url-safe base64 characters, 32 to 128 of them.
_KEY_BODY = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer ex_live_…``: an integration's API key.

    One indexed query finds the key by its public lookup part, with its user and the user's
    role in the key's organization; the stored HMAC is compared in constant time. Revoked,
    expired, inactive-user and former-member keys fail with 401 from the very next request
    (nothing is cached). The authenticated user carries the key as ``user.api_key``, which
    narrows ``visible_to`` and every permission check to the key's organization and scopes.

    No message, log line or exception here contains the key.
    """

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != b"bearer":
            return None
        if not parts[1].startswith(API_KEY_PREFIX.encode()):
            return None
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The API key is invalid.") from None
        return self.authenticate_key(raw)

    def authenticate_key(self, raw: str):
        if not _KEY_BODY.match(raw[len(API_KEY_PREFIX) :]):
            raise exceptions.AuthenticationFailed("The API key is invalid.")
        # Hashed before the lookup, so an unknown lookup part and a wrong secret part take
        # the same work and answer the same words.
        digest = hash_api_key(raw)
        # ``lookup`` is unique: no ORDER BY (``first()`` would add one for nothing). The
        # membership join brings the user's current role along.
        found = (
            ApiKey.objects.select_related("user", "membership")
            .filter(lookup=api_key_lookup(raw))
            .order_by()[:1]
        )
        api_key = next(iter(found), None)
        if api_key is None or not hmac.compare_digest(api_key.key_hash, digest):
            raise exceptions.AuthenticationFailed("The API key is invalid.")
        now = timezone.now()
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("The API key has been revoked.")
        if api_key.expires_at is not None and api_key.expires_at <= now:
            raise exceptions.AuthenticationFailed("The API key has expired.")
        user = api_key.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("The user of this API key is inactive.")
        if not user.is_staff and api_key.member_role is None:
            raise exceptions.AuthenticationFailed(
                "The user of this API key is no longer a member of its organization."
            )
        api_key_touch(api_key=api_key, now=now)
        user.api_key = api_key
        return user, api_key

    def authenticate_header(self, request) -> str:
        return WWW_AUTHENTICATE
