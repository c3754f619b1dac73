"""Reads of the metrics domain: entity resolution, definition lookups and the chainable
value queries the API and the admin build on. Nothing here writes or validates."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID

import orjson
from django.db import models
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import JSONObject

from entities.models import Organization, Party, User
from entities.permissions import NOT_FETCHED, value_write_role

from .constants import ContextType, Operation
from .models import MetricDefinition, MetricValue, MetricValueHistory


def entity_queryset(context_type: str) -> models.QuerySet:
    """The table that ``context_type`` names, with what timezone defaults need joined."""
    if context_type == ContextType.ORGANIZATION:
        return Organization.objects.all()
    if context_type == ContextType.PARTY:
        return Party.objects.select_related("organization")
    if context_type == ContextType.USER:
        return User.objects.all()
    raise ValueError(f"unknown context type {context_type!r}")


def visible_entities(context_type: str, user) -> models.QuerySet:
    """Entities of ``context_type`` the caller may see, by the ``visible_to`` rules of the
    entity models (the same as every other read)."""
    queryset = entity_queryset(context_type)
    if context_type == ContextType.USER:
        return queryset.filter(pk__in=User.objects.visible_to(user).values("pk"))
    return queryset.visible_to(user)


def entity_get(*, context_type: str, entity_uid: UUID, user=None):
    """The entity, or ``None`` when it does not exist or (given a user) is not visible."""
    queryset = (
        visible_entities(context_type, user) if user is not None else entity_queryset(context_type)
    )
    # ``uid`` is unique: no ORDER BY (``first()`` would add the model's ordering and a sort).
    return next(iter(queryset.filter(uid=entity_uid).order_by()[:1]), None)


def entity_organization_timezone(entity) -> str:
    """The default timezone for values of ``entity``: its organization's.

    A user belongs to no single organization, so a user's own timezone stands in.
    """
    if isinstance(entity, Party):
        return entity.organization.timezone
    return getattr(entity, "timezone", None) or "UTC"


def entity_timezone_sql(context_type: str, quote) -> tuple[str, str]:
    """``entity_queryset`` and ``entity_organization_timezone`` in SQL: the FROM item
    that names the entity ``e`` (joined to what its default timezone needs) and the
    expression of that timezone."""
    if context_type == ContextType.ORGANIZATION:
        return f"{quote(Organization._meta.db_table)} e", "e.timezone"
    if context_type == ContextType.PARTY:
        organizations = quote(Organization._meta.db_table)
        parties = quote(Party._meta.db_table)
        return f"{parties} e JOIN {organizations} o ON o.id = e.organization_id", "o.timezone"
    if context_type == ContextType.USER:
        return f"{quote(User._meta.db_table)} e", "COALESCE(NULLIF(e.timezone, ''), 'UTC')"
    raise ValueError(f"unknown context type {context_type!r}")


# --- Everything a value create needs to know, in one statement --------------------------------

#: Columns of the entity a create reads, by context type: ``EntityRef`` needs the uid and
#: the default timezone (a party's organization's), ``can_write_values`` the ids.
_CREATE_ENTITY_COLUMNS: dict[str, dict[str, str]] = {
    ContextType.ORGANIZATION: {"id": "id", "uid": "uid", "timezone": "timezone"},
    ContextType.PARTY: {
        "id": "id",
        "uid": "uid",
        "organization_id": "organization_id",
        "organization_timezone": "organization__timezone",
    },
    ContextType.USER: {"id": "id", "uid": "uid", "timezone": "timezone"},
}
#: What validation (context, activity, value rules) and the answer need of a definition.
_CREATE_DEFINITION_FIELDS = (
    "id",
    "uid",
    "name",
    "context_type",
    "value_type",
    "storage_unit",
    "period_definition",
    "is_active",
)
#: Prefix of the statement's column aliases (they may not clash with the model's fields).
_ALIAS = "c_"


@dataclass(frozen=True, slots=True)
class ValueCreateScope:
    """What ``value_create_scope`` found: the visible entity (with only the columns a
    create reads loaded; others load on access), the ``role`` to pass to
    ``can_write_values`` (``NOT_FETCHED`` when it needs none) and the definition
    (``None``: unknown uid)."""

    entity: models.Model
    role: str | None
    definition: MetricDefinition | None


def value_create_queryset(*, context_type: str, entity_uid, user, metric_uid: str | None):
    """The one statement behind ``value_create_scope``: the entity through the same
    ``visible_entities`` as every read, the role from ``value_write_role`` (the fact
    ``can_write_values`` would otherwise query) and the definition as a JSON object from
    an independent subquery (so an unknown uid still returns the entity)."""
    queryset = visible_entities(context_type, user).filter(uid=entity_uid).order_by()
    definition = (
        MetricDefinition.objects.filter(uid=metric_uid)
        .order_by()
        .values(json=JSONObject(**{name: name for name in _CREATE_DEFINITION_FIELDS}))[:1]
    )
    columns = {
        _ALIAS + alias: F(path) for alias, path in _CREATE_ENTITY_COLUMNS[context_type].items()
    }
    columns[_ALIAS + "definition"] = Subquery(definition)
    role = value_write_role(user, queryset.model)
    if role is not None:
        columns[_ALIAS + "role"] = role
    return queryset.values(**columns)[:1]


def value_create_scope(
    *, context_type: str, entity_uid: UUID, user, metric_uid: str | None
) -> ValueCreateScope | None:
    """The entity of a create if ``user`` may see it (``None`` otherwise, the 404 case),
    with the caller's deciding role and the definition, in one statement."""
    if not (user and user.is_authenticated):
        return None
    queryset = value_create_queryset(
        context_type=context_type, entity_uid=entity_uid, user=user, metric_uid=metric_uid
    )
    row = next(iter(queryset), None)
    if row is None:
        return None
    return _scope_from_row(context_type, row, queryset.db)


def _scope_from_row(context_type: str, value: dict, alias: str) -> ValueCreateScope:
    """Model instances from a row of ``value_create_queryset`` (only the read columns are
    loaded: any other field is fetched on access, like ``QuerySet.only``)."""
    pk, uid = value[_ALIAS + "id"], value[_ALIAS + "uid"]
    if context_type == ContextType.PARTY:
        entity = Party.from_db(
            alias, ["id", "uid", "organization_id"], [pk, uid, value[_ALIAS + "organization_id"]]
        )
        entity.organization = Organization.from_db(
            alias,
            ["id", "timezone"],
            [value[_ALIAS + "organization_id"], value[_ALIAS + "organization_timezone"]],
        )
    else:
        model = Organization if context_type == ContextType.ORGANIZATION else User
        entity = model.from_db(
            alias, ["id", "uid", "timezone"], [pk, uid, value[_ALIAS + "timezone"]]
        )
    return ValueCreateScope(
        entity=entity,
        role=value.get(_ALIAS + "role", NOT_FETCHED),
        definition=_definition_from_json(value[_ALIAS + "definition"], alias),
    )


def _definition_from_json(raw, alias: str) -> MetricDefinition | None:
    if raw is None:
        return None
    data = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    meta = MetricDefinition._meta
    return MetricDefinition.from_db(
        alias,
        list(_CREATE_DEFINITION_FIELDS),
        [meta.get_field(name).to_python(data[name]) for name in _CREATE_DEFINITION_FIELDS],
    )


def metric_definitions_by_uid(uids: Iterable[str]) -> dict[str, MetricDefinition]:
    """The definitions among ``uids`` that exist, keyed by uid (one query)."""
    return {d.uid: d for d in MetricDefinition.objects.filter(uid__in=list(uids))}


class MetricValueQuerySet(models.QuerySet):
    """Chainable, side-effect-free query building over the values table.

    Every method keeps to the columns of the unique index (entity, metric, unit, date), so
    an entity-scoped read is an index range scan whatever the size of the table.
    """

    def for_entity(self, *, context_type: str, entity_uid: UUID) -> "MetricValueQuerySet":
        return self.filter(entity_uid=entity_uid, context_type=context_type)

    def with_time_unit(self, time_unit: str) -> "MetricValueQuerySet":
        return self.filter(time_unit=time_unit)

    def for_metrics(self, metric_ids: Iterable[int] | None) -> "MetricValueQuerySet":
        """Only these metrics; ``None`` means all of them."""
        if metric_ids is None:
            return self
        return self.filter(metric_id__in=list(metric_ids))

    def in_range(self, start: date | None, end: date | None) -> "MetricValueQuerySet":
        """``metric_date`` between ``start`` and ``end``, both inclusive and optional."""
        queryset = self
        if start is not None:
            queryset = queryset.filter(metric_date__gte=start)
        if end is not None:
            queryset = queryset.filter(metric_date__lte=end)
        return queryset

    def latest_per_metric(
        self,
        *,
        context_type: str,
        entity_uid: UUID,
        time_unit: str,
        metric_ids: Iterable[int] | None = None,
    ) -> "MetricValueQuerySet":
        """The newest value of each metric of the entity, in one statement.

        For every definition of the context a correlated ``ORDER BY metric_date DESC
        LIMIT 1`` subquery picks one uid. On PostgreSQL each is a single backward descent
        of the unique index (the same plan as a ``LATERAL`` join), so the cost grows with
        the number of metrics and not with the stored history; SQLite runs the same SQL
        with the same result. A ``DISTINCT ON`` would instead read every row of the entity.
        """
        latest_uids = _newest_per_definition(
            MetricValue.objects.all(),
            "uid",
            context_type=context_type,
            entity_uid=entity_uid,
            time_unit=time_unit,
            metric_ids=metric_ids,
        )
        return self.filter(uid__in=latest_uids)


def _newest_per_definition(
    rows: models.QuerySet,
    uid_field: str,
    *,
    context_type: str,
    entity_uid: UUID,
    time_unit: str,
    metric_ids: Iterable[int] | None,
) -> models.QuerySet:
    """The uid (``uid_field``) of the newest row of ``rows`` per definition of the
    context: one correlated ``ORDER BY metric_date DESC LIMIT 1`` subquery each."""
    newest = (
        rows.filter(entity_uid=entity_uid, metric_id=OuterRef("pk"), time_unit=time_unit)
        .order_by("-metric_date")
        .values(uid_field)[:1]
    )
    definitions = MetricDefinition.objects.filter(context_type=context_type)
    if metric_ids is not None:
        definitions = definitions.filter(pk__in=list(metric_ids))
    return definitions.annotate(latest_uid=Subquery(newest)).values("latest_uid")


def metric_values() -> MetricValueQuerySet:
    """All values, as a ``MetricValueQuerySet`` to chain the methods above on."""
    return MetricValueQuerySet(model=MetricValue)


def metric_value_get_visible(*, uid: UUID, user) -> tuple[MetricValue, object] | None:
    """The value and its entity, or ``None`` when either is missing or the entity is not
    visible to ``user``: a value is visible exactly when its entity is."""
    value = MetricValue.objects.select_related("metric").filter(uid=uid).first()
    if value is None:
        return None
    entity = entity_get(context_type=value.context_type, entity_uid=value.entity_uid, user=user)
    if entity is None:
        return None
    return value, entity


# --- History and as-of reads ------------------------------------------------------------------


class MetricValueHistoryQuerySet(MetricValueQuerySet):
    """The history table read as the values table was at one instant (``as_of``): the
    entity, unit, metric and date filters of ``MetricValueQuerySet`` apply unchanged, on
    the history's index of the same columns followed by ``recorded_at``."""

    def current_at(self, instant: datetime) -> "MetricValueHistoryQuerySet":
        """The versions current at ``instant``: recorded by then and not yet superseded,
        deleted ones left out. ``uid`` names the value, as in the values table."""
        return (
            self.filter(recorded_at__lte=instant)
            .filter(Q(superseded_at__isnull=True) | Q(superseded_at__gt=instant))
            .exclude(operation=Operation.DELETE)
            .annotate(uid=F("value_uid"))
        )

    def latest_per_metric(
        self,
        *,
        context_type: str,
        entity_uid: UUID,
        time_unit: str,
        metric_ids: Iterable[int] | None = None,
        as_of: datetime,
    ) -> "MetricValueHistoryQuerySet":
        """``MetricValueQuerySet.latest_per_metric`` as of ``as_of``: one backward
        descent of the as-of index per metric, skipping versions not current then."""
        latest_uids = _newest_per_definition(
            metric_values_as_of(as_of),
            "value_uid",
            context_type=context_type,
            entity_uid=entity_uid,
            time_unit=time_unit,
            metric_ids=metric_ids,
        )
        return self.filter(value_uid__in=latest_uids)


def as_of_instant(text: str) -> datetime:
    """The instant of an ``as_of``: ISO 8601 with ``Z`` or an offset, not in the future,
    in UTC. A ``ValueError`` says what is wrong (a bare date and a local time are
    ambiguous)."""
    text = text.strip()
    # A "+" sent unencoded in a query string arrives as a space.
    if len(text) > 19 and text[-6] == " ":
        text = f"{text[:-6]}+{text[-5:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "Enter an ISO 8601 instant with Z or an offset, like 2026-03-15T10:00:00Z."
        ) from None
    if moment.tzinfo is None or "T" not in text.upper():
        raise ValueError(
            "Give the instant's offset (Z or +hh:mm); a bare date or local time is ambiguous."
        )
    if moment > datetime.now(UTC):
        raise ValueError("as_of is in the future; the service cannot answer for it yet.")
    return moment.astimezone(UTC)


def metric_values_as_of(instant: datetime) -> MetricValueHistoryQuerySet:
    """Every value as it was at ``instant``, as ``MetricValueHistory`` rows."""
    return MetricValueHistoryQuerySet(model=MetricValueHistory).current_at(instant)


def metric_value_history_visible(*, uid: UUID, user) -> models.QuerySet | None:
    """The versions of the value ``uid``, newest first, or ``None`` when no value with that
    uid ever existed or its entity is not visible to ``user``. A deleted value's history
    stays readable to whoever may read its entity."""
    versions = MetricValueHistory.objects.filter(value_uid=uid)
    first = versions.order_by("version").values("context_type", "entity_uid").first()
    if first is None:
        return None
    if entity_get(user=user, **first) is None:
        return None
    return versions.order_by("-version")


def metric_value_as_of_visible(*, uid: UUID, user, as_of: datetime):
    """The value as it was at ``as_of`` (a ``MetricValueHistory`` row with the value's
    fields), or ``None`` when it did not exist then or its entity is not visible."""
    version = metric_values_as_of(as_of).select_related("metric").filter(value_uid=uid).first()
    if version is None:
        return None
    if entity_get(context_type=version.context_type, entity_uid=version.entity_uid, user=user):
        return version
    return None
