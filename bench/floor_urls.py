"""The application's URLs plus the floor view (``bench/floor_views.py``)."""

from django.urls import path

from exante.urls import urlpatterns as app_urlpatterns

from .floor_views import floor_create

urlpatterns = [
    path("floor/values/<str:context_type>/<uuid:entity_uid>", floor_create),
    *app_urlpatterns,
]
