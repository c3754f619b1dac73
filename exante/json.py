"""JSON as the service writes it: orjson, with exact decimals."""

from decimal import Decimal

import orjson

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _default(obj):
    if isinstance(obj, Decimal):
        # Written as a JSON number with no float round trip: NUMERIC(24, 6) holds more
        # significant digits than a double does.
        if not obj.is_finite():
            raise TypeError("non-finite decimal")
        return orjson.Fragment(format(obj.normalize(), "f").encode())
    # Lazy translation strings and other str-like objects.
    return str(obj)


def dumps(data) -> bytes:
    return orjson.dumps(data, default=_default, option=_ORJSON_OPTIONS)
