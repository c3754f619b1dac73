"""WSGI entry point (gunicorn ``exante.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exante.settings.base")

application = get_wsgi_application()
