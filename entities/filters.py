"""Query filters of the entities API. Every queryset they receive is already narrowed by
``visible_to``; a filter that names another organization must not widen it or reveal
anything about that organization (see ``UserFilter.filter_organization``)."""

import django_filters
from django.db.models import Q
from django.utils import timezone

from exante.filters import StrictBooleanFilter

from .models import (
    ApiKey,
    Invitation,
    InvitationStatus,
    Membership,
    Organization,
    Party,
    Role,
    User,
)


class OrganizationFilter(django_filters.FilterSet):
    is_active = StrictBooleanFilter(help_text="`true`/`false`/`1`/`0`.")
    search = django_filters.CharFilter(
        method="filter_search", help_text="Case-insensitive substring of `name`."
    )

    class Meta:
        model = Organization
        fields = ["is_active"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(name__icontains=value)


class PartyFilter(django_filters.FilterSet):
    organization_uid = django_filters.UUIDFilter(
        field_name="organization__uid", help_text="Only parties of this organization."
    )
    is_active = StrictBooleanFilter(help_text="`true`/`false`/`1`/`0`.")
    search = django_filters.CharFilter(
        method="filter_search",
        help_text="Case-insensitive substring of `name` or `external_ref`.",
    )

    class Meta:
        model = Party
        fields = ["organization_uid", "is_active"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(external_ref__icontains=value))


class UserFilter(django_filters.FilterSet):
    organization_uid = django_filters.UUIDFilter(
        method="filter_organization",
        help_text="Only members of this organization (one the caller can see).",
    )
    is_active = StrictBooleanFilter(help_text="`true`/`false`/`1`/`0`.")
    search = django_filters.CharFilter(
        method="filter_search",
        help_text="Case-insensitive substring of `email`, `first_name` or `last_name`.",
    )

    class Meta:
        model = User
        fields = ["organization_uid", "is_active"]

    def filter_organization(self, queryset, name, value):
        # Only organizations the caller sees: otherwise a caller sharing one organization
        # with a user could learn which *other* organizations that user belongs to.
        organizations = Organization.objects.visible_to(self.request.user).filter(uid=value)
        members = Membership.objects.filter(organization__in=organizations).values("user_id")
        return queryset.filter(pk__in=members)

    def filter_search(self, queryset, name, value):
        return queryset.filter(
            Q(email__icontains=value)
            | Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
        )


class MemberFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)
    search = django_filters.CharFilter(
        method="filter_search",
        help_text="Case-insensitive substring of the member's email, first or last name.",
    )

    class Meta:
        model = Membership
        fields = ["role"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(
            Q(user__email__icontains=value)
            | Q(user__first_name__icontains=value)
            | Q(user__last_name__icontains=value)
        )


class ApiKeyFilter(django_filters.FilterSet):
    organization_uid = django_filters.UUIDFilter(
        field_name="organization__uid", help_text="Only keys acting in this organization."
    )
    is_revoked = StrictBooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", exclude=True, help_text="Revoked or not."
    )

    class Meta:
        model = ApiKey
        fields = ["organization_uid"]


class InvitationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=InvitationStatus.choices,
        method="filter_status",
        help_text="The status as read now (`expired`: pending past `expires_at`).",
    )
    role = django_filters.ChoiceFilter(choices=Role.choices)
    search = django_filters.CharFilter(
        field_name="email", lookup_expr="icontains", help_text="Substring of the email."
    )

    class Meta:
        model = Invitation
        fields = ["status", "role"]

    def filter_status(self, queryset, name, value):
        return queryset.with_status(value, timezone.now())
