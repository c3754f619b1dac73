"""JWT endpoints: token, refresh with rotation, verify, logout."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.tokens import UntypedToken

from exante.fields import StrictFieldsMixin

from .authentication import BearerJWTAuthentication
from .schema import error_response


class TokenObtainSerializer(StrictFieldsMixin, jwt_serializers.TokenObtainPairSerializer):
    pass


class TokenRefreshSerializer(StrictFieldsMixin, jwt_serializers.TokenRefreshSerializer):
    pass


class TokenVerifySerializer(StrictFieldsMixin, jwt_serializers.TokenVerifySerializer):
    """A token is valid only while its user is, exactly as every other endpoint judges it
    (the authentication class's own user check): a deactivated or deleted user's token
    is a 401 here too."""

    def validate(self, attrs):
        answer = super().validate(attrs)
        BearerJWTAuthentication().get_user(UntypedToken(attrs["token"]))
        return answer


class LogoutSerializer(StrictFieldsMixin, jwt_serializers.TokenBlacklistSerializer):
    pass


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="Access token (short-lived).")
    refresh = serializers.CharField(help_text="Refresh token.")


class EmptySerializer(serializers.Serializer):
    pass


class _PublicTokenView:
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_scope = "auth"


class TokenObtainView(_PublicTokenView, jwt_views.TokenObtainPairView):
    serializer_class = TokenObtainSerializer

    @extend_schema(
        tags=["auth"],
        operation_id="auth_token_obtain",
        summary="Obtain a JWT pair",
        description="Exchange an email and password for an access and a refresh token.",
        responses={200: TokenPairSerializer, 401: error_response(401)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenRefreshView(_PublicTokenView, jwt_views.TokenRefreshView):
    serializer_class = TokenRefreshSerializer

    @extend_schema(
        tags=["auth"],
        operation_id="auth_token_refresh",
        summary="Refresh a JWT",
        description=(
            "Returns a new access token and a rotated refresh token; the refresh token sent "
            "is blacklisted and cannot be used again."
        ),
        responses={200: TokenPairSerializer, 401: error_response(401)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenVerifyView(_PublicTokenView, jwt_views.TokenVerifyView):
    serializer_class = TokenVerifySerializer

    @extend_schema(
        tags=["auth"],
        operation_id="auth_token_verify",
        summary="Verify a JWT",
        description=(
            "200 with an empty object when the token is valid and its user exists and is "
            "active; 401 otherwise (expired, malformed, blacklisted, or a deactivated "
            "user: the same answer any other endpoint gives that token)."
        ),
        responses={200: EmptySerializer, 401: error_response(401)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class LogoutView(_PublicTokenView, jwt_views.TokenBlacklistView):
    serializer_class = LogoutSerializer

    @extend_schema(
        tags=["auth"],
        operation_id="auth_logout",
        summary="Log out",
        description="Blacklists the refresh token; it can no longer be refreshed.",
        responses={200: EmptySerializer, 401: error_response(401)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
