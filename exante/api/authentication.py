"""JWT authentication: ``Authorization: Bearer <JWT>``.

API keys travel in the same header; their class (``entities.api.authentication``) runs
first and claims only ``ex_live_…`` tokens.
"""

import uuid

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

WWW_AUTHENTICATE = 'Bearer realm="api"'
#: The request attribute holding (raw token, verified token) once a token was verified.
_VERIFIED_TOKEN = "_verified_access_token"


class BearerJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication, answering ``WWW-Authenticate: Bearer`` on 401."""

    def authenticate(self, request):
        header = self.get_header(request)
        raw_token = None if header is None else self.get_raw_token(header)
        if raw_token is None:
            return None
        # One signature check per request: the idempotency middleware names a keyed
        # write's caller with this token before the view (0.37 M instructions a keyed create).
        verified = getattr(request._request, _VERIFIED_TOKEN, None)
        if verified is None or verified[0] != raw_token:
            verified = (raw_token, self.get_validated_token(raw_token))
            setattr(request._request, _VERIFIED_TOKEN, verified)
        return self.get_user(verified[1]), verified[1]

    def authenticate_header(self, request) -> str:
        return WWW_AUTHENTICATE


class TokenClaimsUser:
    """The user a verified access token names, not loaded.

    Only for actions whose own statement reads the user and requires it to exist and be
    active (the value create): such a request costs no query for authentication, and
    deactivating the user still refuses it at once. Nothing else about the user is known
    here; ``load_user`` gives the real one.
    """

    is_authenticated = True
    is_anonymous = False
    api_key = None

    def __init__(self, uid: uuid.UUID, token):
        self.uid = uid
        self.token = token


class TokenClaimsAuthentication(BearerJWTAuthentication):
    """A verified JWT as a ``TokenClaimsUser`` (signature, expiry and type are checked;
    the users table is not read)."""

    def get_user(self, validated_token):
        try:
            return TokenClaimsUser(
                uuid.UUID(str(validated_token[api_settings.USER_ID_CLAIM])), validated_token
            )
        except (KeyError, ValueError):
            raise InvalidToken("The token contains no recognizable user identification.") from None


def load_user(user):
    """The real user behind ``user``: itself, or for a ``TokenClaimsUser`` the active user
    its token names (401 when it is gone or inactive, as any other endpoint answers)."""
    if isinstance(user, TokenClaimsUser):
        return BearerJWTAuthentication().get_user(user.token)
    return user
