"""Bad input never writes and never 500s: one table of bad requests against the value
endpoints, each with its documented status, error envelope, code and field."""

import json
from datetime import date
from decimal import Decimal

import pytest

from metrics.models import MetricValue

GOOD = {"metric_uid": "total_ar", "metric_date": "2026-03-15", "value": 100}
BIG_METADATA = {"blob": "x" * (17 * 1024)}


@pytest.fixture
def dso(make_definition):
    return make_definition("dso", name="DSO", value_type="days")


@pytest.fixture
def open_invoices(make_definition):
    return make_definition("open_invoice_count", name="Open invoices", value_type="count")


def deep(levels: int):
    node: dict = {}
    for _ in range(levels):
        node = {"n": node}
    return node


def body(**changes):
    """GOOD with ``changes`` applied; a change to ``...`` removes the key."""
    out = dict(GOOD)
    for key, new in changes.items():
        if new is ...:
            out.pop(key, None)
        else:
            out[key] = new
    return out


def raw(text: str) -> bytes:
    return text.encode()


# (id, method, target, payload, content type, status, code, field)
# target: "create" (Acme's ORGANIZATION values), "list" (the same path with a query
# string in payload), "detail" (a stored value). A dict payload is sent as JSON; bytes
# are sent as they are.
CREATE = "create"
LIST = "list"
DETAIL = "detail"
JSON = "application/json"
NFE = "non_field_errors"

CASES = [
    # value: JSON types
    (
        "value-junk-string",
        "POST",
        CREATE,
        body(value="abc"),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    ("value-true", "POST", CREATE, body(value=True), JSON, 400, "validation_error", "value"),
    ("value-false", "POST", CREATE, body(value=False), JSON, 400, "validation_error", "value"),
    ("value-null", "POST", CREATE, body(value=None), JSON, 400, "validation_error", "value"),
    ("value-array", "POST", CREATE, body(value=[1]), JSON, 400, "validation_error", "value"),
    ("value-object", "POST", CREATE, body(value={"a": 1}), JSON, 400, "validation_error", "value"),
    (
        "value-number-junk",
        "POST",
        CREATE,
        body(value="12abc"),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    ("value-empty-string", "POST", CREATE, body(value=""), JSON, 400, "validation_error", "value"),
    (
        "value-blank-string",
        "POST",
        CREATE,
        body(value="  "),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    (
        "value-hex-string",
        "POST",
        CREATE,
        body(value="0x10"),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    ("value-nan-string", "POST", CREATE, body(value="NaN"), JSON, 400, "validation_error", "value"),
    (
        "value-inf-string",
        "POST",
        CREATE,
        body(value="Infinity"),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    (
        "value-1e400-string",
        "POST",
        CREATE,
        body(value="1e400"),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    ("value-missing", "POST", CREATE, body(value=...), JSON, 400, "validation_error", "value"),
    # value: raw non-standard JSON numbers
    (
        "raw-nan",
        "POST",
        CREATE,
        raw('{"metric_uid":"total_ar","metric_date":"2026-03-15","value":NaN}'),
        JSON,
        400,
        "validation_error",
        NFE,
    ),
    (
        "raw-infinity",
        "POST",
        CREATE,
        raw('{"metric_uid":"total_ar","metric_date":"2026-03-15","value":Infinity}'),
        JSON,
        400,
        "validation_error",
        NFE,
    ),
    (
        "raw-minus-infinity",
        "POST",
        CREATE,
        raw('{"metric_uid":"total_ar","metric_date":"2026-03-15","value":-Infinity}'),
        JSON,
        400,
        "validation_error",
        NFE,
    ),
    (
        "raw-1e400",
        "POST",
        CREATE,
        raw('{"metric_uid":"total_ar","metric_date":"2026-03-15","value":1e400}'),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    (
        "raw-huge-integer",
        "POST",
        CREATE,
        raw('{"metric_uid":"total_ar","metric_date":"2026-03-15","value":' + "9" * 5000 + "}"),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    ("value-10e18", "POST", CREATE, body(value=10**18), JSON, 400, "validation_error", "value"),
    (
        "value-minus-10e18",
        "POST",
        CREATE,
        body(value=-(10**18)),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    # value: rules that depend on the metric
    (
        "count-negative",
        "POST",
        CREATE,
        body(metric_uid="open_invoice_count", value=-1),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    (
        "count-fraction",
        "POST",
        CREATE,
        body(metric_uid="open_invoice_count", value=1.5),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    ("cents-fraction", "POST", CREATE, body(value=10.5), JSON, 400, "validation_error", "value"),
    (
        "cents-fraction-string",
        "POST",
        CREATE,
        body(value="10.01"),
        JSON,
        400,
        "validation_error",
        "value",
    ),
    # metric_date
    (
        "date-feb-30",
        "POST",
        CREATE,
        body(metric_date="2026-02-30"),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "date-before-1900",
        "POST",
        CREATE,
        body(metric_date="1899-12-31"),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "date-after-2199",
        "POST",
        CREATE,
        body(metric_date="2200-01-01"),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "date-year-zero",
        "POST",
        CREATE,
        body(metric_date="0000-01-01"),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "date-short-form",
        "POST",
        CREATE,
        body(metric_date="2026-3-1"),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "date-us-form",
        "POST",
        CREATE,
        body(metric_date="03/15/2026"),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "date-datetime",
        "POST",
        CREATE,
        body(metric_date="2026-03-15T00:00:00"),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "date-integer",
        "POST",
        CREATE,
        body(metric_date=20260315),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "date-null",
        "POST",
        CREATE,
        body(metric_date=None),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "date-missing",
        "POST",
        CREATE,
        body(metric_date=...),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "month-misaligned",
        "POST",
        CREATE,
        body(time_unit="month"),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "year-misaligned",
        "POST",
        CREATE,
        body(time_unit="year", metric_date="2026-03-01"),
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    # time_unit
    (
        "time-unit-week",
        "POST",
        CREATE,
        body(time_unit="week"),
        JSON,
        400,
        "validation_error",
        "time_unit",
    ),
    (
        "time-unit-uppercase",
        "POST",
        CREATE,
        body(time_unit="DAY"),
        JSON,
        400,
        "validation_error",
        "time_unit",
    ),
    (
        "time-unit-boolean",
        "POST",
        CREATE,
        body(time_unit=True),
        JSON,
        400,
        "validation_error",
        "time_unit",
    ),
    # timezone
    (
        "timezone-unknown",
        "POST",
        CREATE,
        body(timezone="Mars/Olympus_Mons"),
        JSON,
        400,
        "validation_error",
        "timezone",
    ),
    (
        "timezone-lowercase",
        "POST",
        CREATE,
        body(timezone="europe/paris"),
        JSON,
        400,
        "validation_error",
        "timezone",
    ),
    (
        "timezone-number",
        "POST",
        CREATE,
        body(timezone=5),
        JSON,
        400,
        "validation_error",
        "timezone",
    ),
    # _metadata
    (
        "metadata-array",
        "POST",
        CREATE,
        body(_metadata=[1, 2]),
        JSON,
        400,
        "validation_error",
        "_metadata",
    ),
    (
        "metadata-string",
        "POST",
        CREATE,
        body(_metadata="audit"),
        JSON,
        400,
        "validation_error",
        "_metadata",
    ),
    (
        "metadata-number",
        "POST",
        CREATE,
        body(_metadata=5),
        JSON,
        400,
        "validation_error",
        "_metadata",
    ),
    (
        "metadata-over-16k",
        "POST",
        CREATE,
        body(_metadata=BIG_METADATA),
        JSON,
        400,
        "validation_error",
        "_metadata",
    ),
    (
        "metadata-too-deep",
        "POST",
        CREATE,
        body(_metadata=deep(80)),
        JSON,
        400,
        "validation_error",
        "_metadata",
    ),
    # PostgreSQL's jsonb refuses U+0000: a 400 on every database, not a 500 on one.
    (
        "metadata-nul-in-value",
        "POST",
        CREATE,
        body(_metadata={"note": "a\u0000b"}),
        JSON,
        400,
        "validation_error",
        "_metadata",
    ),
    (
        "metadata-nul-in-key",
        "POST",
        CREATE,
        body(_metadata={"nested": [{"k\u0000": 1}]}),
        JSON,
        400,
        "validation_error",
        "_metadata",
    ),
    # fields
    ("unknown-field", "POST", CREATE, body(colour="red"), JSON, 400, "validation_error", "colour"),
    (
        "metadata-without-underscore",
        "POST",
        CREATE,
        body(metadata={}),
        JSON,
        400,
        "validation_error",
        "metadata",
    ),
    (
        "metric-uid-missing",
        "POST",
        CREATE,
        body(metric_uid=...),
        JSON,
        400,
        "validation_error",
        "metric_uid",
    ),
    (
        "metric-uid-number",
        "POST",
        CREATE,
        body(metric_uid=5),
        JSON,
        400,
        "validation_error",
        "metric_uid",
    ),
    (
        "metric-uid-empty",
        "POST",
        CREATE,
        body(metric_uid=""),
        JSON,
        400,
        "validation_error",
        "metric_uid",
    ),
    (
        "metric-uid-unknown",
        "POST",
        CREATE,
        body(metric_uid="no_such"),
        JSON,
        400,
        "validation_error",
        "metric_uid",
    ),
    (
        "context-in-body",
        "POST",
        CREATE,
        body(context_type="ORGANIZATION"),
        JSON,
        400,
        "validation_error",
        "context_type",
    ),
    # whole bodies
    ("empty-body", "POST", CREATE, b"", JSON, 400, "validation_error", "metric_uid"),
    ("empty-object", "POST", CREATE, {}, JSON, 400, "validation_error", "metric_uid"),
    ("not-json", "POST", CREATE, raw("{not json"), JSON, 400, "validation_error", NFE),
    ("json-array", "POST", CREATE, raw("[1, 2]"), JSON, 400, "validation_error", NFE),
    ("json-string", "POST", CREATE, raw('"value"'), JSON, 400, "validation_error", NFE),
    ("json-null", "POST", CREATE, raw("null"), JSON, 400, "validation_error", NFE),
    (
        "not-utf8",
        "POST",
        CREATE,
        b'{"metric_uid": "\xff\xfe"}',
        JSON,
        400,
        "validation_error",
        "metric_uid",
    ),
    (
        "text-plain",
        "POST",
        CREATE,
        raw(json.dumps(GOOD)),
        "text/plain",
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "form-encoded",
        "POST",
        CREATE,
        raw("metric_uid=total_ar&value=1"),
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "oversized",
        "POST",
        CREATE,
        raw(json.dumps(body(_metadata={"x": "y" * (1024 * 1024)}))),
        JSON,
        413,
        "payload_too_large",
        None,
    ),
    # query parameters of the list
    ("per-page-junk", "GET", LIST, {"per_page": "ten"}, None, 400, "validation_error", "per_page"),
    (
        "per-page-too-big",
        "GET",
        LIST,
        {"per_page": "1001"},
        None,
        400,
        "validation_error",
        "per_page",
    ),
    ("page-negative", "GET", LIST, {"page": "-1"}, None, 400, "validation_error", "page"),
    ("latest-maybe", "GET", LIST, {"latest": "maybe"}, None, 400, "validation_error", "latest"),
    (
        "include-metadata-yes",
        "GET",
        LIST,
        {"include_metadata": "yes"},
        None,
        400,
        "validation_error",
        "include_metadata",
    ),
    (
        "start-date-month-13",
        "GET",
        LIST,
        {"start_date": "2026-13-01"},
        None,
        400,
        "validation_error",
        "start_date",
    ),
    (
        "end-date-junk",
        "GET",
        LIST,
        {"end_date": "yesterday"},
        None,
        400,
        "validation_error",
        "end_date",
    ),
    (
        "start-after-end",
        "GET",
        LIST,
        {"start_date": "2026-02-01", "end_date": "2026-01-01"},
        None,
        400,
        "validation_error",
        "start_date",
    ),
    (
        "time-unit-hour",
        "GET",
        LIST,
        {"time_unit": "hour"},
        None,
        400,
        "validation_error",
        "time_unit",
    ),
    ("sort-unknown", "GET", LIST, {"sort": "-uid"}, None, 400, "validation_error", "sort"),
    (
        "metric-uid-unknown-query",
        "GET",
        LIST,
        {"metric_uid": "total_ar,ghost"},
        None,
        400,
        "validation_error",
        "metric_uid",
    ),
    (
        "metric-uid-only-commas",
        "GET",
        LIST,
        {"metric_uid": ",,"},
        None,
        400,
        "validation_error",
        "metric_uid",
    ),
    # PATCH of a stored value
    (
        "patch-value-boolean",
        "PATCH",
        DETAIL,
        {"value": True},
        JSON,
        400,
        "validation_error",
        "value",
    ),
    ("patch-value-null", "PATCH", DETAIL, {"value": None}, JSON, 400, "validation_error", "value"),
    (
        "patch-value-fraction-cents",
        "PATCH",
        DETAIL,
        {"value": 0.5},
        JSON,
        400,
        "validation_error",
        "value",
    ),
    (
        "patch-metadata-array",
        "PATCH",
        DETAIL,
        {"_metadata": []},
        JSON,
        400,
        "validation_error",
        "_metadata",
    ),
    (
        "patch-timezone-unknown",
        "PATCH",
        DETAIL,
        {"timezone": "Nowhere/Town"},
        JSON,
        400,
        "validation_error",
        "timezone",
    ),
    (
        "patch-timezone-null",
        "PATCH",
        DETAIL,
        {"timezone": None},
        JSON,
        400,
        "validation_error",
        "timezone",
    ),
    ("patch-unknown-field", "PATCH", DETAIL, {"uid": "x"}, JSON, 400, "validation_error", "uid"),
    (
        "patch-metric-date-changed",
        "PATCH",
        DETAIL,
        {"metric_date": "2026-01-02"},
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "patch-metric-date-bad",
        "PATCH",
        DETAIL,
        {"metric_date": "2026-02-30"},
        JSON,
        400,
        "validation_error",
        "metric_date",
    ),
    (
        "patch-entity-uid-junk",
        "PATCH",
        DETAIL,
        {"entity_uid": "nope"},
        JSON,
        400,
        "validation_error",
        "entity_uid",
    ),
    ("patch-not-json", "PATCH", DETAIL, raw("{"), JSON, 400, "validation_error", NFE),
    (
        "patch-text-plain",
        "PATCH",
        DETAIL,
        raw("{}"),
        "text/plain",
        415,
        "unsupported_media_type",
        None,
    ),
]


@pytest.fixture
def stored(organization, total_ar):
    return MetricValue.objects.create(
        metric=total_ar,
        context_type="ORGANIZATION",
        entity_uid=organization.uid,
        metric_date=date(2026, 1, 1),
        value=Decimal(100),
        metadata={"keep": True},
    )


def test_the_table_is_big_enough():
    assert len(CASES) >= 40
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("method", "target", "payload", "content_type", "status", "code", "field"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_request_is_rejected_and_writes_nothing(
    editor_client,
    organization,
    total_ar,
    open_invoices,
    dso,
    stored,
    method,
    target,
    payload,
    content_type,
    status,
    code,
    field,
):
    before = list(MetricValue.objects.order_by("uid").values_list("uid", "value", "metadata"))
    url = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
    if target == DETAIL:
        url = f"/api/metrics/values/{stored.uid}"
    if target == LIST:
        response = editor_client.get(url, payload)
    else:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        response = editor_client.generic(method, url, data, content_type=content_type)
    assert response.status_code == status, response.content[:500]
    envelope = response.json()
    assert envelope["status"] == "error"
    assert envelope["status_code"] == status
    assert envelope["code"] == code
    assert isinstance(envelope["message"], str) and envelope["message"]
    if field is not None:
        assert field in envelope["errors"], envelope
    after = list(MetricValue.objects.order_by("uid").values_list("uid", "value", "metadata"))
    assert after == before


def test_seven_decimals_are_a_201_rounded_half_even(editor_client, organization, dso):
    url = f"/api/metrics/values/ORGANIZATION/{organization.uid}"
    response = editor_client.post(
        url, {"metric_uid": "dso", "metric_date": "2026-03-15", "value": "2.0000005"}
    )
    assert response.status_code == 201
    assert response.json()["data"]["value"] == 2.0  # ...05 rounds to the even 0
    response = editor_client.post(
        url, {"metric_uid": "dso", "metric_date": "2026-03-16", "value": 2.0000015}
    )
    assert response.json()["data"]["value"] == 2.000002  # ...15 rounds up to the even 2
    assert MetricValue.objects.count() == 2
