"""The Redoc bundle, served so that the API docs load nothing from another host.

The vendored bundle shows the Redocly logo from Redocly's CDN; this copy points that image at
an empty ``data:`` URI instead (Redoc drops an image that fails to load), and is otherwise the
file as shipped. Swagger UI and the admin need no such change (see SPECTACULAR_SETTINGS)."""

from functools import cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_safe

REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
REDOCLY_LOGO = b'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"'


@cache
def redoc_bundle_bytes() -> bytes:
    return Path(finders.find(REDOC_BUNDLE)).read_bytes().replace(REDOCLY_LOGO, b'src:"data:,"')


@require_safe
@gzip_page
@cache_control(public=True, max_age=86400)
def redoc_bundle(request):
    return HttpResponse(redoc_bundle_bytes(), content_type="text/javascript; charset=utf-8")
