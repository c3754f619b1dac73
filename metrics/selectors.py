"""Reads of the metrics domain: entity resolution and definition lookups."""

from uuid import UUID

from django.db import models

from entities.models import Organization, Party, User

from .constants import ContextType
from .models import MetricDefinition


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
    return queryset.filter(uid=entity_uid).first()


def entity_organization_timezone(entity) -> str:
    """The default timezone for values of ``entity``: its organization's.

    A user belongs to no single organization, so a user's own timezone stands in.
    """
    if isinstance(entity, Party):
        return entity.organization.timezone
    return getattr(entity, "timezone", None) or "UTC"


def metric_definition_get(uid: str) -> MetricDefinition | None:
    return MetricDefinition.objects.filter(uid=uid).first()
