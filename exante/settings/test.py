"""Settings for the test suite: fast hashing, no throttling surprises, quiet logs."""

from .base import *  # noqa: F403
from .base import LOGGING

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["root"]["level"] = "WARNING"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
