"""Settings of the FLOOR server of ``bench/values_bench.py``: the application's database
and JWT key, no middleware at all, and one URL (``bench/floor_urls.py``) for the minimal
create view the value API is measured against."""

from exante.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
MIDDLEWARE: list[str] = []
