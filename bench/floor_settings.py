"""Settings of the FLOOR server of ``bench/values_bench.py``: the application's own
settings (same middleware, database, JWT key), plus one extra URL (``bench/floor_urls.py``)
for the minimal create view the value API is measured against."""

from exante.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
