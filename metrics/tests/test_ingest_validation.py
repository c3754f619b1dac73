"""The shared ingestion path: the validation shortcut never disagrees with the single
create's full path, and the batched write-permission check equals ``can_write_values``."""

import io
import itertools
import random
import threading
import uuid
from decimal import Decimal

import pytest

from metrics.ingest.batching import prefetch
from metrics.ingest.items import JsonText, Pending, Row, split_item
from metrics.ingest.sources import TextLines
from metrics.ingest.validation import RowValidator
from metrics.models import MetricDefinition

VALUES = [
    0,
    "12",
    -3,
    1,
    "007",
    "999999999999999999",
    "1000000000000000000",
    "-5",
    "\u0663",  # an Arabic-Indic digit: isdigit() but not ASCII
    "12.5",
    "1e3",
    "1.0000005",
    Decimal("2.5"),
    Decimal("1E+18"),
    " 7 ",
    "",
    "abc",
    True,
    None,
    "NaN",
    float("inf"),
    12.25,
    10**18,
    [],
]
DATES = ["2026-03-01", "2026-03-02", "2026-01-01", "1899-12-31", "2026-02-30", "20260301", 5, None]
TIME_UNITS = ["day", "month", "year", "week", None, 3]
ZONES = [None, "UTC", "Europe/Paris", " UTC", "", "Mars/Base", 7]
METADATA = [
    None,
    {},
    {"a": 1},
    [1],
    "x",
    JsonText('{"a": 1.5}'),
    JsonText("[1]"),
    JsonText("{bad"),
    {"n": Decimal("0.5")},
]
METRICS = ["raw_pct", "cnt", "cents_ar", "retired", "party_metric", "unknown", 5, " cnt"]


@pytest.fixture
def catalogue(db):
    definitions = [
        MetricDefinition.objects.create(
            uid="cents_ar", name="a", value_type="currency", storage_unit="cents"
        ),
        MetricDefinition.objects.create(uid="raw_pct", name="b", value_type="percentage"),
        MetricDefinition.objects.create(uid="cnt", name="c", value_type="count"),
        MetricDefinition.objects.create(uid="retired", name="d", is_active=False),
        MetricDefinition.objects.create(uid="party_metric", name="e", context_type="PARTY"),
    ]
    return {d.uid: d for d in definitions}


def _corpus(count: int, seed: int = 3):
    rng = random.Random(seed)
    for _ in range(count):
        item = {"context_type": "ORGANIZATION", "entity_uid": str(uuid.uuid4())}
        for name, choices in (
            ("metric_uid", METRICS),
            ("metric_date", DATES),
            ("value", VALUES),
            ("time_unit", TIME_UNITS),
            ("timezone", ZONES),
            ("_metadata", METADATA),
        ):
            # Mostly plausible values, so that valid rows are common too.
            choice = rng.choice(choices[:3] if rng.random() < 0.8 else choices)
            if choice is not None or rng.random() < 0.3:
                item[name] = choice
        if rng.random() < 0.05:
            item["colour"] = "red"
        yield item


@pytest.mark.parametrize("allow_inactive", [False, True])
def test_shortcut_accepts_only_what_the_full_path_accepts_with_equal_values(
    catalogue, allow_inactive
):
    validator = RowValidator(catalogue, allow_inactive=allow_inactive)
    shortcut_taken = 0
    accepted = 0
    plain_digits = 0
    for index, item in enumerate(_corpus(3000)):
        pending = split_item(index, item)
        assert isinstance(pending, Pending)
        full = validator.validate_fully(pending)
        quick = validator.fast(pending.context_type, item)
        if isinstance(full, Row):
            accepted += 1
        if quick is None:
            continue
        shortcut_taken += 1
        assert isinstance(full, Row), (item, full)
        definition, time_unit, metric_date, value, zone, metadata, _json = quick
        if isinstance(value, str):  # plain digits, staged as the text they are
            assert value.isascii() and value.isdigit() and len(value) <= 18
            plain_digits += 1
            value = Decimal(value)
        assert (definition, time_unit, metric_date, value, zone, metadata) == (
            full.definition,
            full.time_unit,
            full.metric_date,
            full.value,
            full.timezone,
            full.metadata,
        )
    # The corpus exercises both paths, or the test proves nothing.
    assert shortcut_taken > 50 and plain_digits > 10
    assert accepted > shortcut_taken // 2


def _count_item(**fields) -> dict:
    """An item of the ``cnt`` metric for an organization that need not exist."""
    item = {
        "context_type": "ORGANIZATION",
        "entity_uid": str(uuid.uuid4()),
        "metric_uid": "cnt",
        "metric_date": "2026-03-02",
    }
    return {**item, **fields}


def test_validate_reports_the_single_create_messages(catalogue):
    validator = RowValidator(catalogue, allow_inactive=False)
    item = _count_item(time_unit="month", value="1.5")
    errors = validator.validate(split_item(0, item))
    assert errors == {
        "value": ["A count must be a whole number."],
        "metric_date": [
            "For time_unit=month metric_date must be the first day of a month: use 2026-03-01."
        ],
    }
    blank = validator.validate(split_item(0, {**item, "metric_uid": ""}))
    assert blank == {"metric_uid": ["This field may not be blank."]}


@pytest.mark.parametrize(
    ("item", "errors"),
    [
        (
            {},
            {
                "context_type": ["This field is required."],
                "entity_uid": ["This field is required."],
            },
        ),
        (
            {"context_type": "TEAM", "entity_uid": "x"},
            {
                "context_type": ["context_type must be one of ORGANIZATION, PARTY, USER."],
                "entity_uid": ["Must be a valid UUID."],
            },
        ),
        ([1], {"non_field_errors": ["Each item must be a JSON object."]}),
    ],
)
def test_malformed_entity_fields_are_reported_alone(item, errors):
    assert split_item(4, item).errors == errors


def test_corpus_is_varied():
    # Guard against a corpus generator that silently stops covering a dimension.
    seen = {name for item in itertools.islice(_corpus(300), 300) for name in item}
    assert {"metric_uid", "metric_date", "value", "time_unit", "timezone", "_metadata"} <= seen


def test_prefetch_keeps_order_stays_one_ahead_and_hands_over_errors():
    made = []
    taken = []

    def produce():
        for n in range(20):
            # Never more than one item made beyond what the consumer has taken.
            assert len(made) <= len(taken) + 1, (made, taken)
            made.append(n)
            yield n
        raise ValueError("bad file")

    results = []
    with pytest.raises(ValueError, match="bad file"):
        for item in prefetch(produce()):
            taken.append(item)
            results.append(item)
    assert results == list(range(20))


def test_prefetch_stops_its_thread_when_the_consumer_stops():
    stopped = threading.Event()

    def produce():
        try:
            yield from itertools.count()
        finally:
            stopped.set()

    for item in prefetch(produce()):
        if item == 3:
            break
    assert stopped.wait(5)


@pytest.mark.parametrize("zone", [["UTC"], {"tz": "UTC"}])
def test_an_unhashable_timezone_is_a_field_error_not_a_crash(catalogue, zone):
    validator = RowValidator(catalogue, allow_inactive=False)
    item = _count_item(value="1", timezone=zone)
    assert validator.fast("ORGANIZATION", item) is None
    errors = validator.validate(split_item(0, item))
    assert isinstance(errors, dict) and list(errors) == ["timezone"]


@pytest.mark.django_db
def test_bulk_item_with_an_unhashable_timezone_is_a_400(editor_client, organization, total_ar):
    item = {
        "context_type": "ORGANIZATION",
        "entity_uid": str(organization.uid),
        "metric_uid": "total_ar",
        "metric_date": "2026-03-01",
        "value": 1,
        "timezone": ["UTC"],
    }
    response = editor_client.post("/api/metrics/values/bulk", {"items": [item]}, format="json")
    assert response.status_code == 400
    assert "items.0.timezone" in response.json()["errors"]


def test_text_lines_notes_every_line_that_is_not_utf8_across_chunks():
    lines = [b"%d,plain ascii\n" % n for n in range(1, 20_001)]
    lines[0] = b"1,caf\xe9\n"
    lines[9_999] = b"10000,d\xc3\xa9j\xc3\xa0 \xff\n"  # valid UTF-8, then a bad byte
    lines[12_344] = b"12345,\xc3\xa9 valid only\n"
    lines[19_999] = b"20000,\xe2\x82"  # cut short by the end of the stream
    stream = io.TextIOWrapper(
        io.BytesIO(b"".join(lines)), encoding="utf-8-sig", errors="surrogateescape", newline=""
    )
    reader = TextLines(stream)
    read = list(reader)
    assert len(read) == 20_000 and read[12_344] == "12345,\u00e9 valid only\n"
    assert reader.bad == {1: 0xE9, 10_000: 0xFF, 20_000: 0xE2}
    assert reader.take(10_000) == (1, 0xE9)
    assert reader.bad == {20_000: 0xE2}
