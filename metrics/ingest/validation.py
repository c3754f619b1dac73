"""The validator of an item's body: the single create's checks, with a shortcut for the
common row (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from uuid import UUID

import orjson
from django.core.exceptions import ValidationError
from rest_framework.exceptions import ValidationError as DRFValidationError

from entities.validators import is_valid_timezone

from ..constants import TimeUnit
from ..fields import MetadataField, MetricValueCreateSerializer, StrictDateField
from ..models import MetricDefinition
from ..services import (
    EntityRef,
    is_plain_whole_number,
    metric_date_errors,
    metric_value_build,
    normalize_metadata,
    normalize_value,
    value_errors_for_definition,
)
from .items import ITEM_KEYS, JsonText, Pending, Row, metadata_from_text

_TIME_UNITS = frozenset(TimeUnit.values)
_PLACEHOLDER_DATE = date(2000, 1, 1)  # aligned for every time unit


def _messages(detail) -> dict[str, list[str]]:
    return {name: [str(message) for message in messages] for name, messages in detail.items()}


_NOT_SURE = False


class RowValidator:
    """Steps 2 and 3 above for one item, against a catalogue of definitions.

    ``definitions`` maps uid → definition; a uid not in it is looked up (and remembered)
    on the full path, so a partial catalogue is only slower, never wrong.
    """

    def __init__(self, definitions: Mapping[str, MetricDefinition], *, allow_inactive: bool):
        self.definitions = dict(definitions)
        self.allow_inactive = allow_inactive
        self._metrics: dict[tuple, MetricDefinition | bool] = {}
        self._dates: dict[tuple, date | bool] = {}
        self._heads: dict[tuple, tuple | bool] = {}
        self._zones: set[str] = set()
        self._texts: dict[str, tuple | bool] = {}
        self._wholes: dict[int, bool] = {}
        self._date_field = StrictDateField()
        self._metadata_field = MetadataField(required=False, allow_null=True)

    # The shortcut. Every test below is the rule function the full path would call, or a
    # memo of its answer for the same input; ``None`` means "not sure", never "invalid".
    def fast(self, context_type: str, raw: Mapping) -> tuple | None:
        """→ (definition, time_unit, metric_date, value, timezone, metadata, metadata JSON
        or None), or ``None`` to take the full path. ``value`` is a Decimal, or text of
        plain digits (see ``_fast_rest``)."""
        if not raw.keys() <= ITEM_KEYS:
            return None
        get = raw.get
        return self.fast_cells(
            context_type,
            get("metric_uid"),
            get("time_unit", "day"),
            get("metric_date"),
            get("value"),
            get("timezone"),
            get("_metadata"),
        )

    def fast_cells(
        self,
        context_type: str,
        metric_uid: object,
        time_unit: object,
        metric_date: object,
        raw_value: object,
        zone: object,
        metadata: object,
    ) -> tuple | None:
        """``fast`` for an item already taken apart (an absent ``time_unit`` is ``"day"``,
        any other absent field ``None``): CSV records come here without becoming dicts."""
        definition = self._metric(metric_uid, context_type)
        if definition is _NOT_SURE:
            return None
        metric_date = self._date(metric_date, time_unit)
        if metric_date is _NOT_SURE:
            return None
        return self._fast_rest(definition, time_unit, metric_date, raw_value, zone, metadata)

    def fast_text(
        self,
        context_type: str,
        metric_uid: str | None,
        time_unit: str,
        metric_date: str | None,
        raw_value: str | None,
        zone: str | None,
        metadata: JsonText | None,
    ) -> tuple | None:
        """``fast_cells`` for CSV cells (text, or ``None`` where blank): the metric and
        date verdicts, which repeat down a file, are memoised together."""
        key = (metric_uid, context_type, time_unit, metric_date)
        head = self._heads.get(key)
        if head is None:
            head = definition = self._metric(metric_uid, context_type)
            if definition is not _NOT_SURE:
                parsed = self._date(metric_date, time_unit)
                head = _NOT_SURE if parsed is _NOT_SURE else (definition, parsed)
            if len(self._heads) > 100_000:
                self._heads.clear()
            self._heads[key] = head
        if head is _NOT_SURE:
            return None
        return self._fast_rest(head[0], time_unit, head[1], raw_value, zone, metadata)

    def _fast_rest(self, definition, time_unit, metric_date, raw_value, zone, metadata):
        """The value, timezone and ``_metadata`` part of the shortcut.

        A value of plain digits (``is_plain_whole_number``) comes back as that text: it is
        exact as it stands, and the metric's rules pass it if they pass any whole,
        non-negative number. Anything else comes back as ``normalize_value``'s Decimal.
        """
        if raw_value is None:
            return None
        if is_plain_whole_number(raw_value) and self._whole_numbers_allowed(definition):
            value = raw_value
        else:
            try:
                value = normalize_value(raw_value)
            except ValidationError:
                return None
            if value_errors_for_definition(value, definition):
                return None
        if zone is not None and (zone.__class__ is not str or zone not in self._zones):
            if not (zone.__class__ is str and zone.strip() == zone and is_valid_timezone(zone)):
                return None
            self._zones.add(zone)
        if metadata is None:
            return definition, time_unit, metric_date, value, zone, {}, "{}"
        if metadata.__class__ is JsonText:
            memo = self._texts.get(metadata)
            if memo is None:
                memo = self._metadata_text(metadata)
            if memo is _NOT_SURE:
                return None
            return definition, time_unit, metric_date, value, zone, memo[0], memo[1]
        try:
            clean = normalize_metadata(self._metadata_field.run_validation(metadata))
        except (ValidationError, DRFValidationError):
            return None
        return definition, time_unit, metric_date, value, zone, clean, None

    def _whole_numbers_allowed(self, definition: MetricDefinition) -> bool:
        """``value_errors_for_definition`` looks only at wholeness and sign: its verdict on
        1 is its verdict on every whole, non-negative value."""
        verdict = self._wholes.get(definition.id)  # not .pk: a property, and this is hot
        if verdict is None:
            verdict = not value_errors_for_definition(Decimal(1), definition)
            self._wholes[definition.id] = verdict
        return verdict

    def _metric(self, metric_uid: object, context_type: str):
        """The metric-level verdict of ``metric_value_build`` (known, same context,
        active), asked once per metric and context with an otherwise perfect row."""
        if metric_uid.__class__ is not str:
            return _NOT_SURE
        key = (metric_uid, context_type)
        verdict = self._metrics.get(key)
        if verdict is None:
            definition = self.definitions.get(metric_uid)
            verdict = _NOT_SURE
            if definition is not None:
                try:
                    metric_value_build(
                        definition=definition,
                        entity=EntityRef(context_type, UUID(int=0), "UTC"),
                        metric_date=_PLACEHOLDER_DATE,
                        value=0,
                        allow_inactive=self.allow_inactive,
                    )
                    verdict = definition
                except ValidationError:
                    pass
            self._metrics[key] = verdict
        return verdict

    def _date(self, raw: object, time_unit: object):
        """The serializer's date field, the time unit's choices and ``metric_date_errors``,
        memoised per (text, unit)."""
        if raw.__class__ is not str or time_unit.__class__ is not str:
            return _NOT_SURE
        key = (raw, time_unit)
        verdict = self._dates.get(key)
        if verdict is None:
            verdict = _NOT_SURE
            if time_unit in _TIME_UNITS:
                try:
                    parsed = self._date_field.to_internal_value(raw)
                    if not metric_date_errors(parsed, time_unit):
                        verdict = parsed
                except DRFValidationError:
                    pass
            if len(self._dates) > 100_000:
                self._dates.clear()
            self._dates[key] = verdict
        return verdict

    def _metadata_text(self, text: str):
        try:
            clean = normalize_metadata(
                self._metadata_field.run_validation(metadata_from_text(text))
            )
            memo = (clean, orjson.dumps(clean).decode())
        except (ValueError, ValidationError, DRFValidationError):
            memo = _NOT_SURE
        if len(self._texts) > 10_000:
            self._texts.clear()
        self._texts[text] = memo
        return memo

    def _definition(self, uid: str) -> MetricDefinition | None:
        if uid not in self.definitions:
            self.definitions[uid] = MetricDefinition.objects.filter(uid=uid).first()
        return self.definitions[uid]

    def validate(self, pending: Pending) -> Row | dict[str, list[str]]:
        """A ``Row``, or the errors a single create would answer with (field → messages)."""
        quick = self.fast(pending.context_type, pending.raw)
        if quick is None:
            return self.validate_fully(pending)
        definition, time_unit, metric_date, value, zone, metadata, _json = quick
        if value.__class__ is str:  # plain digits: the Decimal a single create stores
            value = normalize_value(value)
        return Row(
            pending.index,
            pending.context_type,
            pending.entity_uid,
            definition,
            time_unit,
            metric_date,
            value,
            zone,
            metadata,
        )

    def validate_fully(self, pending: Pending) -> Row | dict[str, list[str]]:
        """The single create's path: its serializer, then ``metric_value_build``."""
        data = {k: v for k, v in pending.raw.items() if k not in ("context_type", "entity_uid")}
        metadata = data.get("_metadata")
        if metadata.__class__ is JsonText:
            try:
                data["_metadata"] = metadata_from_text(metadata)
            except ValueError as exc:
                return {"_metadata": [f"Not valid JSON: {exc}."]}
        body = MetricValueCreateSerializer(data=data)
        if not body.is_valid():
            return _messages(body.errors)
        data = body.validated_data
        metric_uid = data["metric_uid"]
        try:
            built = metric_value_build(
                definition=self._definition(metric_uid),
                metric_uid=metric_uid,
                # The default timezone is filled in by the writer, which knows the entity.
                entity=EntityRef(pending.context_type, pending.entity_uid, None),
                time_unit=data["time_unit"],
                metric_date=data["metric_date"],
                value=data["value"],
                timezone=data.get("timezone"),
                metadata=data.get("_metadata"),
                allow_inactive=self.allow_inactive,
            )
        except ValidationError as exc:
            return exc.message_dict
        return Row(
            pending.index,
            pending.context_type,
            pending.entity_uid,
            built.metric,
            built.time_unit,
            built.metric_date,
            built.value,
            built.timezone,
            built.metadata,
        )
