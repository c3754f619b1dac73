"""Top-level URL configuration."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from exante import observability
from exante.api import auth, docs, handlers, health

api_patterns = [
    re_path(r"^auth/token/?$", auth.TokenObtainView.as_view(), name="auth-token"),
    re_path(r"^auth/token/refresh/?$", auth.TokenRefreshView.as_view(), name="auth-token-refresh"),
    re_path(r"^auth/token/verify/?$", auth.TokenVerifyView.as_view(), name="auth-token-verify"),
    re_path(r"^auth/logout/?$", auth.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^redoc/?$", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("redoc/redoc.standalone.js", docs.redoc_bundle, name="redoc-bundle"),
    path("", include("metrics.api.urls")),
    path("", include("entities.api.urls")),
]

urlpatterns = [
    path("api/", include(api_patterns)),
    re_path(r"^healthz/?$", health.healthz, name="healthz"),
    re_path(r"^readyz/?$", health.readyz, name="readyz"),
    re_path(r"^metrics/?$", observability.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]

handler400 = handlers.bad_request
handler403 = handlers.permission_denied
handler404 = handlers.not_found
handler500 = handlers.server_error
