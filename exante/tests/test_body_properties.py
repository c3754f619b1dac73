"""Property: whatever bytes a client sends as JSON to the value write endpoints, the answer
is never a 5xx, always the envelope, and a refusal writes nothing.

Bodies are built as raw text so that they can hold what a JSON library would never write:
lone surrogates, NUL, bytes that are not UTF-8, duplicated keys, nesting past any limit,
integers of thousands of digits, exponents past any float.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.models import MetricValue

pytestmark = pytest.mark.django_db

PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FIELDS = ["metric_uid", "metric_date", "value", "time_unit", "timezone", "_metadata"]

# Every code point, lone surrogates and NUL included.
any_text = st.text(st.characters(exclude_categories=()), max_size=12)


def _string(text: str) -> bytes:
    # ensure_ascii writes a lone surrogate as its \udXXX escape, as a client library would.
    return json.dumps(text, ensure_ascii=True).encode()


numbers = st.one_of(
    st.integers(min_value=-(10**60), max_value=10**60).map(lambda n: str(n).encode()),
    st.sampled_from([b"1e400", b"-1e-400", b"0.0000005", b"1E18", b"999999999999999999.9999999"]),
    st.integers(min_value=1, max_value=6000).map(lambda n: b"9" * n),
    st.decimals(allow_nan=False, allow_infinity=False, places=8).map(lambda d: str(d).encode()),
)
invalid_utf8 = st.sampled_from([b'"\xff"', b'"\xc3("', b'"\xe2\x82"', b'"\xed\xa0\x80"'])
scalars = st.one_of(
    any_text.map(_string),
    numbers,
    invalid_utf8,
    st.sampled_from([b"true", b"false", b"null", b"NaN", b'"2026-03-15"', b'"total_ar"']),
)


def _object(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"{" + b",".join(key + b":" + value for key, value in pairs) + b"}"


keys = st.one_of(st.sampled_from(FIELDS).map(_string), any_text.map(_string))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: b"[" + b",".join(items) + b"]"),
        # Pairs, not a dict: the same key may come twice.
        st.lists(st.tuples(keys, inner), max_size=3).map(_object),
    ),
    max_leaves=8,
)
deep = st.integers(min_value=30, max_value=1500).map(lambda n: b"[" * n + b"1" + b"]" * n)


@st.composite
def bodies(draw) -> bytes:
    """A create-shaped object with hostile fields, or now and then something else."""
    pairs = [
        (b'"metric_uid"', b'"total_ar"'),
        (b'"metric_date"', draw(st.sampled_from([b'"2026-03-15"', b'"2026-03-16"']))),
        (b'"value"', draw(st.one_of(numbers, scalars))),
    ]
    pairs += draw(st.lists(st.tuples(keys, st.one_of(values, deep)), max_size=3))
    shuffled = draw(st.permutations(pairs))
    body = _object(shuffled)
    return draw(st.sampled_from([body, body, body, body[:-1], b"[" + body + b"]"]))


def _values_snapshot():
    return list(MetricValue.objects.order_by("uid").values_list("uid", "value", "metadata"))


def _assert_envelope(response, before) -> None:
    assert response.status_code < 500, response.content[:300]
    envelope = response.json()
    assert envelope["status_code"] == response.status_code
    if response.status_code >= 400:
        assert envelope["status"] == "error"
        assert isinstance(envelope["code"], str) and envelope["code"]
        assert _values_snapshot() == before
    else:
        assert envelope["status"] == "success"


@pytest.fixture
def stored(organization, total_ar):
    return MetricValue.objects.create(
        metric=total_ar,
        context_type="ORGANIZATION",
        entity_uid=organization.uid,
        metric_date="2026-01-01",
        value=5,
    )


@PROPERTY_SETTINGS
@given(body=bodies())
def test_create_never_answers_5xx_and_a_refusal_writes_nothing(
    editor_client, organization, total_ar, body
):
    before = _values_snapshot()
    response = editor_client.generic(
        "POST",
        f"/api/metrics/values/ORGANIZATION/{organization.uid}",
        body,
        content_type="application/json",
    )
    _assert_envelope(response, before)


@PROPERTY_SETTINGS
@given(body=bodies())
def test_patch_never_answers_5xx_and_a_refusal_writes_nothing(editor_client, stored, body):
    before = _values_snapshot()
    response = editor_client.generic(
        "PATCH", f"/api/metrics/values/{stored.uid}", body, content_type="application/json"
    )
    _assert_envelope(response, before)


@PROPERTY_SETTINGS
@given(items=st.lists(bodies(), min_size=1, max_size=3), policy=st.sampled_from(["skip", "update"]))
def test_bulk_never_answers_5xx_and_a_refusal_writes_nothing(
    editor_client, organization, total_ar, items, policy
):
    entity = f'"context_type": "ORGANIZATION", "entity_uid": "{organization.uid}", '.encode()
    # Each item gains the entity fields when it is an object; anything else stays as drawn.
    items = [b"{" + entity + item[1:] if item.startswith(b"{") else item for item in items]
    body = b'{"on_conflict": "' + policy.encode() + b'", "items": [' + b",".join(items) + b"]}"
    before = _values_snapshot()
    response = editor_client.generic(
        "POST", "/api/metrics/values/bulk", body, content_type="application/json"
    )
    _assert_envelope(response, before)
