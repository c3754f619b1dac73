"""JWT authentication: ``Authorization: Bearer <JWT>``.

API keys travel in the same header; their class (``entities.api.authentication``) runs
first and claims only ``ex_live_…`` tokens.
"""

import uuid

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

WWW_AUTHENTICATE = 'Bearer realm="api"'


class BearerJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication, answering ``WWW-Authenticate: Bearer`` on 401."""

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
