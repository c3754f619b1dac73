"""Authentication classes: ``Authorization: Bearer <JWT>``."""

from rest_framework_simplejwt.authentication import JWTAuthentication


class BearerJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication, answering ``WWW-Authenticate: Bearer`` on 401."""

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
