"""The one strict reader of request bodies: every API endpoint parses JSON through it.

A body is UTF-8 JSON and nothing looser: exact decimals (never a float), no NaN/Infinity,
no duplicated keys, no lone surrogate or NUL in any string, nesting and integer literals
bounded, and a size limit enforced while reading. Every refusal of a body that *is* JSON
names the top-level field holding the problem, so a client can point at it.
"""

import json
import re
from decimal import Decimal

from django.conf import settings
from django.http.multipartparser import parse_header_parameters
from rest_framework import status
from rest_framework.exceptions import (
    APIException,
    ParseError,
    UnsupportedMediaType,
    ValidationError,
)
from rest_framework.parsers import BaseParser
from rest_framework.settings import api_settings

#: Containers inside containers; the body's own object is level 1.
MAX_DEPTH = 32
#: Digits of one integer literal (a sign aside); values and ids need far fewer.
MAX_INTEGER_DIGITS = 40

_NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY
_UTF8_NAMES = frozenset({"utf-8", "utf8"})
# A JSON string or one structural character; what the depth scan of a too-deep body reads.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]', re.DOTALL)
# Surrogate code points: a lone ``\ud800`` escape, or an invalid byte after decoding with
# ``surrogateescape`` (U+DC80–U+DCFF).
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def body_limit(view) -> int:
    """The byte limit of a body sent to ``view``: the setting its ``max_body_setting``
    names (``API_MAX_BODY_BYTES`` unless a view asks for another)."""
    name = getattr(view, "max_body_setting", None) or "API_MAX_BODY_BYTES"
    return getattr(settings, name)


class _Duplicated(dict):
    """An object in which some key appeared more than once (the last value is kept, as
    ``json`` does, so the walk can still name where it was)."""

    __slots__ = ("duplicates",)


class _Overlong:
    """Stands where an integer literal of more than ``MAX_INTEGER_DIGITS`` digits was:
    never turned into an ``int`` (a huge literal costs quadratic time to convert)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits


def _object(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set = set()
    duplicates = [key for key, _ in pairs if key in seen or seen.add(key)]
    marked = _Duplicated(result)
    marked.duplicates = list(dict.fromkeys(duplicates))
    return marked


def _integer(literal: str):
    digits = len(literal) - (literal[0] == "-")
    if digits > MAX_INTEGER_DIGITS:
        return _Overlong(digits)
    return int(literal)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


def _printable(text: str) -> str:
    """``text`` as it can be written back in an error message (escapes instead of
    surrogates, which no encoder accepts)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _string_problem(text: str, invalid_bytes: bool) -> str | None:
    if "\x00" in text:
        return "holds a NUL character (U+0000), which is not allowed."
    if text.isascii() or not _SURROGATE.search(text):
        return None
    if invalid_bytes and _ESCAPED_BYTE.search(text):
        return "is not valid UTF-8."
    return "holds a lone surrogate (\\ud800–\\udfff), which is not a character."


def _first_problem(node, path: str, depth: int, invalid_bytes: bool) -> str | None:
    """The first rule that ``node`` (found at ``path``, ``depth`` containers deep) or
    anything inside it breaks, as a message naming where; ``None`` when it is clean.

    The walk keeps no paths (a bulk body has tens of thousands of nodes); the path of the
    one offending node is looked up afterwards."""
    root = node
    stack = [(node, depth)]
    while stack:
        node, depth = stack.pop()
        kind = node.__class__
        if kind is str:
            if problem := _string_problem(node, invalid_bytes):
                return f"{_path_to(root, path, node)} {problem}"
        elif kind is dict or kind is _Duplicated:
            if depth > MAX_DEPTH:
                return f"{path} is nested deeper than {MAX_DEPTH} levels."
            if kind is _Duplicated:
                key = _printable(node.duplicates[0])
                return f"{_path_to(root, path, node)}: the key {key!r} appears more than once."
            for key, child in node.items():
                if problem := _string_problem(key, invalid_bytes):
                    return f"A key in {_path_to(root, path, node)} {problem}"
                stack.append((child, depth + 1))
        elif kind is list:
            if depth > MAX_DEPTH:
                return f"{path} is nested deeper than {MAX_DEPTH} levels."
            depth += 1
            stack.extend((child, depth) for child in node)
        elif kind is _Overlong:
            where = _path_to(root, path, node)
            return f"{where} is an integer of {node.digits} digits; at most {MAX_INTEGER_DIGITS}."
    return None


def _path_to(root, path: str, target) -> str:
    """The dotted path of ``target`` (found by identity) inside ``root``, itself at
    ``path``."""
    stack = [(root, path)]
    while stack:
        node, where = stack.pop()
        if node is target:
            return where
        if isinstance(node, dict):
            stack.extend((child, f"{where}.{key}") for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((child, f"{where}.{index}") for index, child in enumerate(node))
    return path


def _body_errors(data, invalid_bytes: bool) -> dict[str, list[str]]:
    """Field → messages for every top-level field that breaks a rule of the body."""
    if not isinstance(data, dict):
        problem = _first_problem(data, "body", 1, invalid_bytes)
        return {_NON_FIELD: [problem]} if problem else {}
    errors: dict[str, list[str]] = {}
    if isinstance(data, _Duplicated):
        for key in data.duplicates:
            if not _string_problem(key, invalid_bytes):
                errors[key] = [f"The key {key!r} appears more than once."]
    for key, child in data.items():
        if _string_problem(key, invalid_bytes):
            errors.setdefault(_NON_FIELD, []).append(
                f"The key {_printable(key)!r} is not valid text (a NUL, a lone surrogate "
                "or bytes that are not UTF-8)."
            )
        elif key not in errors and (problem := _first_problem(child, key, 2, invalid_bytes)):
            errors[key] = [problem]
    return errors


def _too_deep_field(text: str) -> str | None:
    """For a body too deep for the JSON parser itself: the top-level key under which the
    nesting passes ``MAX_DEPTH`` (``None``: the body is no object, or none was found)."""
    depth, key, last_string, top_is_object = 0, None, None, False
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            if depth == 0:
                top_is_object = token == "{"
            depth += 1
            if depth > MAX_DEPTH:
                return key if top_is_object else None
        elif token in "]}":
            depth -= 1
        elif token == ":":
            if depth == 1 and last_string is not None:
                key = json.loads(last_string)
        elif token != ",":
            last_string = token
    return None


def parse_json_body(raw: bytes) -> object:
    """``raw`` → the JSON value, or a ``ValidationError`` / ``ParseError`` saying why not.

    Invalid UTF-8 is decoded with ``surrogateescape`` so that the bytes land, marked, in
    the string that holds them and the field can be named; outside a string they make the
    text not JSON at all.
    """
    try:
        text = raw.decode("utf-8")
        invalid_bytes = False
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "surrogateescape")
        invalid_bytes = True
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = json.loads(
            text,
            object_pairs_hook=_object,
            parse_float=Decimal,
            parse_int=_integer,
            parse_constant=_reject_constant,
        )
    except RecursionError:
        field = _too_deep_field(text)
        message = f"The body is nested deeper than {MAX_DEPTH} levels."
        raise ValidationError({field or _NON_FIELD: [message]}) from None
    except ValueError as exc:
        what = "UTF-8 JSON" if invalid_bytes else "valid JSON"
        raise ParseError(f"The request body is not {what}: {exc}") from None
    if errors := _body_errors(data, invalid_bytes):
        raise ValidationError(errors)
    return data


class StrictJSONParser(BaseParser):
    """Reads ``application/json`` bodies by the rules of ``parse_json_body``.

    Numbers with a fraction or exponent become ``Decimal`` (``0.1`` stays ``0.1``). A
    ``charset`` other than UTF-8 is a 415. The limit is the view's (``body_limit``),
    refused from ``Content-Length`` before reading and enforced while reading.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        _content_type, params = parse_header_parameters(media_type or self.media_type)
        charset = params.get("charset")
        if charset is not None and charset.lower() not in _UTF8_NAMES:
            raise UnsupportedMediaType(
                media_type, detail=f"Bodies are UTF-8 JSON; charset {charset[:40]!r} is not."
            )
        context = parser_context or {}
        limit = body_limit(context.get("view"))
        request = context.get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        if not raw.strip():
            return {}
        return parse_json_body(raw)
