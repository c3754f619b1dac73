"""Validators shared by entities and metric values."""

from functools import lru_cache
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_timezone(name: object) -> bool:
    """True for an IANA timezone name known to this system (``UTC``, ``Europe/Paris``)."""
    return isinstance(name, str) and name in _timezones()


def validate_timezone(name: str) -> None:
    if not is_valid_timezone(name):
        raise ValidationError(
            "%(value)s is not a known IANA timezone name (for example Europe/Paris or UTC).",
            code="invalid_timezone",
            params={"value": name},
        )
