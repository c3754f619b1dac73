"""URL path converters: a malformed path segment is a 404 from the resolver, before any
view code (authentication included) runs."""

import uuid

from django.urls import register_converter
from django.urls.converters import get_converters

#: The entity contexts a metric value can belong to, exact and case-sensitive.
CONTEXT_TYPES = ("ORGANIZATION", "PARTY", "USER")


class ContextTypeConverter:
    """``ORGANIZATION`` | ``PARTY`` | ``USER``; any other spelling does not match."""

    regex = "|".join(CONTEXT_TYPES)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return str(value)


class AnyCaseUUIDConverter:
    """A hyphenated UUID in either case, as a ``uuid.UUID``.

    Django's built-in ``uuid`` converter only matches lowercase hex; clients that print
    UUIDs in uppercase would get a 404 for an existing resource.
    """

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value) -> str:
        return str(value)


CONVERTERS = {"context_type": ContextTypeConverter, "anyuuid": AnyCaseUUIDConverter}


def register() -> None:
    """Register the converters; idempotent, since Django warns on a second registration
    and more than one URL module may use them."""
    known = get_converters()
    for name, converter in CONVERTERS.items():
        if name not in known:
            register_converter(converter, name)
