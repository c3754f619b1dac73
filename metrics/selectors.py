"""Reads of the metrics domain: entity resolution, definition lookups and the chainable
value queries the API and the admin build on. Nothing here writes or validates."""

from collections.abc import Iterable
from datetime import date
from uuid import UUID

from django.db import models
from django.db.models import OuterRef, Subquery

from entities.models import Organization, Party, User

from .constants import ContextType
from .models import MetricDefinition, MetricValue


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
    """Entities of ``context_type`` the caller may see (spec §3.5 visibility rules)."""
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


def metric_definition_get(uid: str) -> MetricDefinition | None:
    return next(iter(MetricDefinition.objects.filter(uid=uid).order_by()[:1]), None)


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
        newest = (
            MetricValue.objects.filter(
                entity_uid=entity_uid, metric_id=OuterRef("pk"), time_unit=time_unit
            )
            .order_by("-metric_date")
            .values("uid")[:1]
        )
        definitions = MetricDefinition.objects.filter(context_type=context_type)
        if metric_ids is not None:
            definitions = definitions.filter(pk__in=list(metric_ids))
        latest_uids = definitions.annotate(latest_uid=Subquery(newest)).values("latest_uid")
        return self.filter(uid__in=latest_uids)


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
