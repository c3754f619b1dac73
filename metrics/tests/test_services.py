"""The one validation path for metric values (``metrics.services``), without HTTP."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from metrics import services
from metrics.constants import StorageUnit, ValueType
from metrics.exceptions import DuplicateValue
from metrics.models import MetricDefinition, MetricValue
from metrics.services import EntityRef


@pytest.fixture
def acme_ref(organization) -> EntityRef:
    return EntityRef.of("ORGANIZATION", organization)


def build(definition, entity, **overrides):
    fields = {
        "definition": definition,
        "entity": entity,
        "metric_date": date(2026, 3, 15),
        "value": 100,
    }
    fields.update(overrides)
    return services.metric_value_build(**fields)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, Decimal("1.000000")),
        ("1234.50", Decimal("1234.500000")),
        ("-7", Decimal("-7.000000")),
        ("+0.5", Decimal("0.500000")),
        (Decimal("0.0000005"), Decimal("0.000000")),  # half-even: 5 after an even 0
        (Decimal("0.0000015"), Decimal("0.000002")),
        (Decimal("-2.5000005"), Decimal("-2.500000")),
        (Decimal("1E+3"), Decimal("1000.000000")),
        (Decimal("999999999999999999.9999994"), Decimal("999999999999999999.999999")),
    ],
)
def test_normalize_value_accepts_and_rounds(raw, expected):
    assert services.normalize_value(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        True,
        False,
        None,
        "abc",
        "",
        "1,000",
        [1],
        {},
        Decimal("NaN"),
        float("inf"),
        10**18,
        Decimal("-1E18"),
        "1e400",
        Decimal("999999999999999999.9999995"),
        # Numeric text is ASCII digits with an optional sign and fraction, nothing else.
        " 12 ",
        "1e5",
        "١٢٣",
        "１２３",
        ".5",
        "5.",
        "+-1",
        "0x10",
        "1_000",
    ],
)
def test_normalize_value_rejects(raw):
    with pytest.raises(ValidationError):
        services.normalize_value(raw)


def test_build_returns_unsaved_instance_with_defaults(total_ar, acme_ref):
    instance = build(total_ar, acme_ref)
    assert instance._state.adding
    assert instance.timezone == "America/Los_Angeles"
    assert instance.time_unit == "day"
    assert instance.metadata == {}
    assert not MetricValue.objects.exists()


def test_build_reports_every_failure_by_field(make_definition, acme_ref):
    inactive_party_metric = make_definition(
        "party_thing", context_type="PARTY", value_type="count", is_active=False
    )
    with pytest.raises(ValidationError) as caught:
        build(
            inactive_party_metric,
            acme_ref,
            value=-1,
            time_unit="month",
            timezone="Nowhere/Land",
            metadata=[1],
        )
    errors = caught.value.message_dict
    assert set(errors) == {"metric_uid", "value", "metric_date", "timezone", "_metadata"}
    # Context mismatch (check 4) comes before inactive (check 5).
    assert "context PARTY" in errors["metric_uid"][0]
    assert "inactive" in errors["metric_uid"][1]
    assert "2026-03-01" in errors["metric_date"][0]


def test_build_unknown_definition_names_the_uid(acme_ref):
    with pytest.raises(ValidationError) as caught:
        build(None, acme_ref, metric_uid="ghost")
    assert "ghost" in caught.value.message_dict["metric_uid"][0]


def test_build_allows_inactive_when_asked(total_ar, acme_ref):
    total_ar.is_active = False
    assert build(total_ar, acme_ref, allow_inactive=True).metric == total_ar


def test_save_new_maps_the_unique_constraint_to_duplicate_value(total_ar, acme_ref):
    first = services.metric_value_save_new(build(total_ar, acme_ref))
    with pytest.raises(DuplicateValue) as caught:
        services.metric_value_save_new(build(total_ar, acme_ref, value=5))
    assert caught.value.data == {"uid": str(first.uid)}
    assert MetricValue.objects.count() == 1


def test_duplicate_inside_a_transaction_leaves_it_usable(total_ar, acme_ref, dso_definition):
    services.metric_value_create(
        definition=total_ar, entity=acme_ref, metric_date=date(2026, 1, 1), value=1
    )
    with transaction.atomic():
        with pytest.raises(DuplicateValue):
            services.metric_value_create(
                definition=total_ar, entity=acme_ref, metric_date=date(2026, 1, 1), value=2
            )
        # The savepoint rolled back only the failed INSERT.
        services.metric_value_create(
            definition=dso_definition, entity=acme_ref, metric_date=date(2026, 1, 1), value=3
        )
    assert MetricValue.objects.count() == 2


@pytest.fixture
def dso_definition(make_definition):
    return make_definition("dso", value_type="days")


@pytest.fixture
def stored(total_ar, acme_ref):
    return services.metric_value_create(
        definition=total_ar,
        entity=acme_ref,
        metric_date=date(2026, 3, 1),
        value=10,
        metadata={"a": 1},
    )


def test_update_changes_only_what_is_given(stored):
    services.metric_value_update(instance=stored, value="20")
    stored.refresh_from_db()
    assert stored.value == Decimal(20)
    assert stored.metadata == {"a": 1}
    assert stored.timezone == "America/Los_Angeles"


def test_update_replaces_metadata_whole(stored):
    services.metric_value_update(instance=stored, metadata={"b": 2})
    stored.refresh_from_db()
    assert stored.metadata == {"b": 2}


def test_update_ignores_identical_identity_and_rejects_changes(stored, organization):
    services.metric_value_update(
        instance=stored,
        metric_uid="total_ar",
        entity_uid=organization.uid,
        metric_date=date(2026, 3, 1),
        value=11,
    )
    with pytest.raises(ValidationError) as caught:
        services.metric_value_update(
            instance=stored, time_unit="month", metric_date=date(2026, 3, 2), value=12
        )
    assert set(caught.value.message_dict) == {"time_unit", "metric_date"}
    stored.refresh_from_db()
    assert stored.value == Decimal(11)


def test_update_rejects_unknown_identity_fields(stored):
    with pytest.raises(TypeError):
        services.metric_value_update(instance=stored, colour="red")


def test_update_writes_nothing_when_any_field_is_bad(stored):
    with pytest.raises(ValidationError):
        services.metric_value_update(instance=stored, value=5, timezone="Bad/Zone")
    stored.refresh_from_db()
    assert stored.value == Decimal(10)


def test_metadata_size_limit_is_on_the_serialized_form():
    services.normalize_metadata({"x": "y" * (16 * 1024 - 20)})
    with pytest.raises(ValidationError):
        services.normalize_metadata({"x": "y" * (16 * 1024)})


@pytest.mark.parametrize("raw", ["-0", Decimal("-0.0000001"), -0.0])
def test_negative_zero_becomes_zero(raw):
    number = services.normalize_value(raw)
    assert number == 0 and not number.is_signed()


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("0", True),
        ("007", True),
        ("9" * 18, True),
        ("1" + "0" * 18, False),  # 10^18: over the limit
        ("", False),
        ("-5", False),
        ("+5", False),
        (" 5", False),
        ("5.0", False),
        ("1e3", False),
        ("\u0663", False),  # an Arabic-Indic digit
        ("\u00b2", False),  # a superscript two: isdigit() is true
        (5, False),
        (Decimal(5), False),
        (None, False),
    ],
)
def test_plain_whole_numbers_are_what_normalize_value_keeps_whole(raw, plain):
    assert services.is_plain_whole_number(raw) is plain
    if plain:
        number = services.normalize_value(raw)
        assert number == int(raw) and number == number.to_integral_value() and number >= 0


@pytest.mark.parametrize("value_type", ValueType.values)
@pytest.mark.parametrize("storage_unit", StorageUnit.values)
def test_value_rules_look_only_at_wholeness_and_sign(value_type, storage_unit):
    """The importer judges every whole, non-negative value by the verdict on 1; a rule on
    anything else (a magnitude, say) must fail here first."""
    definition = MetricDefinition(value_type=value_type, storage_unit=storage_unit)
    verdict = services.value_errors_for_definition(Decimal(1), definition)
    for text in ("0", "1", "2", "100", "4123456", "9" * 18):
        value = services.normalize_value(text)
        assert services.value_errors_for_definition(value, definition) == verdict


@pytest.mark.parametrize(
    "metadata",
    [{"a": "x\u0000"}, {"\u0000": 1}, {"a": [{"b": "\u0000"}]}, {"a": {"b\u0000c": None}}],
)
def test_metadata_may_not_hold_nul(metadata):
    with pytest.raises(ValidationError, match="NUL"):
        services.normalize_metadata(metadata)


def test_metadata_may_hold_an_escaped_backslash_u0000():
    """The six characters ``\\u0000`` are text, not U+0000."""
    assert services.normalize_metadata({"a": "\\u0000"}) == {"a": "\\u0000"}
