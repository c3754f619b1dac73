"""Admin for organizations, parties, users, memberships, invitations and API keys.

Writes go through ``entities.services`` (as the API's do). Each entity links to its metric
values, and an entity that values still refer to cannot be deleted here (a value has no
foreign key to its entity, so nothing else would stop it being orphaned).
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from exante.admin_forms import DomainErrorAdminMixin, ServiceModelForm
from exante.errors import DomainError
from metrics.admin_charts import entity_chart_links, organization_freshness_table
from metrics.models import MetricValue

from .models import ApiKey, Invitation, InvitationStatus, Membership, Organization, Party, User
from .services import (
    api_key_revoke,
    invitation_revoke,
    membership_create,
    membership_delete,
    membership_update,
    organization_create,
    organization_update,
    party_create,
    party_update,
)

# --- Shared pieces --------------------------------------------------------------------------


class ProtectValuesMixin:
    """For the admin of an entity that metric values point at by ``uid``; the admin names
    the ``context_type`` its entity's values carry."""

    context_type: str

    @admin.display(description="charts")
    def charts(self, obj) -> str:
        return entity_chart_links(self.context_type, obj.uid)

    @admin.display(description="metric values")
    def values_link(self, obj) -> str:
        url = reverse("admin:metrics_metricvalue_changelist")
        return format_html('<a href="{}?entity_uid={}">values</a>', url, obj.uid)

    def get_deleted_objects(self, objs, request):
        # One indexed EXISTS per entity (entity_uid leads the values' unique index).
        in_use = [obj for obj in objs if MetricValue.objects.filter(entity_uid=obj.uid).exists()]
        if in_use:
            protected = [
                f"{obj}: metric values refer to it; deactivate it instead of deleting it."
                for obj in in_use
            ]
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)


class EntityAdmin(ProtectValuesMixin, DomainErrorAdminMixin, admin.ModelAdmin):
    def get_inlines(self, request, obj):
        # Inlines only on the change page: the add form's service creates a new instance,
        # which inline formsets built beforehand would not see.
        return self.inlines if obj is not None else ()


class MembershipInlineFormSet(BaseInlineFormSet):
    """Memberships edited inline still go through the services (duplicate members and the
    last-admin rule); a row's user and organization are fixed once it exists."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if form.instance.pk is not None:
            for name in ("user", "organization"):
                if name in form.fields and name != self.fk.name:
                    form.fields[name].disabled = True

    def save_new(self, form, commit=True):
        membership = form.instance
        setattr(membership, self.fk.name, self.instance)
        return membership_create(
            organization=membership.organization, user=membership.user, role=membership.role
        )

    def save_existing(self, form, obj, commit=True):
        # ``obj`` already carries the submitted role (the form copied it on validation);
        # the service must compare against the stored one for the last-admin rule.
        stored = Membership.objects.get(pk=obj.pk)
        return membership_update(membership=stored, role=form.cleaned_data["role"])

    def delete_existing(self, obj, commit=True):
        membership_delete(membership=obj)


class MembershipOfOrganizationInline(admin.TabularInline):
    model = Membership
    formset = MembershipInlineFormSet
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


class MembershipOfUserInline(MembershipOfOrganizationInline):
    fields = ("organization", "role", "created_at")
    autocomplete_fields = ("organization",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("organization")


# --- Organizations --------------------------------------------------------------------------


class OrganizationForm(ServiceModelForm):
    class Meta:
        model = Organization
        fields = ("name", "timezone", "is_active")

    def apply(self, cleaned_data):
        fields = {name: cleaned_data[name] for name in self._meta.fields if name in self.fields}
        if self.instance._state.adding:
            return organization_create(**fields)
        return organization_update(organization=self.instance, **fields)


@admin.register(Organization)
class OrganizationAdmin(EntityAdmin):
    form = OrganizationForm
    context_type = "ORGANIZATION"
    list_display = ("name", "uid", "timezone", "is_active", "parties_link", "values_link")
    list_filter = ("is_active",)
    search_fields = ("name", "=uid")
    readonly_fields = ("uid", "created_at", "updated_at", "charts", "freshness")
    inlines = (MembershipOfOrganizationInline,)

    def get_fields(self, request, obj=None):
        fields = ("name", "timezone", "is_active", "uid", "created_at", "updated_at")
        return fields if obj is None else (*fields, "charts", "freshness")

    @admin.display(description="freshness (stale first)")
    def freshness(self, obj: Organization) -> str:
        return organization_freshness_table(obj)

    @admin.display(description="parties")
    def parties_link(self, obj: Organization) -> str:
        url = reverse("admin:entities_party_changelist")
        return format_html('<a href="{}?organization__id__exact={}">parties</a>', url, obj.pk)

    def save_model(self, request, obj, form, change):
        """Nothing left to do: OrganizationForm wrote through the services."""


# --- Parties --------------------------------------------------------------------------------


class PartyForm(ServiceModelForm):
    class Meta:
        model = Party
        fields = ("organization", "name", "external_ref", "is_active")

    def apply(self, cleaned_data):
        fields = {name: cleaned_data[name] for name in self._meta.fields if name in self.fields}
        if self.instance._state.adding:
            return party_create(**fields)
        fields.pop("organization", None)  # fixed once the party exists
        return party_update(party=self.instance, **fields)


@admin.register(Party)
class PartyAdmin(EntityAdmin):
    form = PartyForm
    context_type = "PARTY"
    list_display = ("name", "organization", "external_ref", "uid", "is_active", "values_link")
    list_select_related = ("organization",)
    list_filter = ("is_active",)
    search_fields = ("name", "external_ref", "=uid")
    autocomplete_fields = ("organization",)

    def get_fields(self, request, obj=None):
        fields = ("organization", "name", "external_ref", "is_active", "uid", "created_at")
        return fields if obj is None else (*fields, "charts")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("uid", "created_at")
        return ("organization", "uid", "created_at", "charts")

    def save_model(self, request, obj, form, change):
        """Nothing left to do: PartyForm wrote through the services."""


# --- Users ----------------------------------------------------------------------------------


class _EmailCleaningMixin:
    """Emails are stored lowercased and compared case-insensitively."""

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"]).strip().lower()
        others = User.objects.filter(email__iexact=email)
        if self.instance.pk is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise ValidationError("A user with this email address already exists.")
        return email


class UserAddForm(_EmailCleaningMixin, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)
        field_classes: dict = {}


class UserEditForm(_EmailCleaningMixin, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes: dict = {}


@admin.register(User)
class UserAdmin(ProtectValuesMixin, DomainErrorAdminMixin, DjangoUserAdmin):
    form = UserEditForm
    add_form = UserAddForm
    context_type = "USER"
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "uid")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "first_name", "last_name", "=uid")
    ordering = ("email",)
    readonly_fields = ("uid", "last_login", "date_joined", "values_link", "charts")
    fieldsets = (
        (None, {"fields": ("email", "password", "uid", "values_link", "charts")}),
        ("Personal info", {"fields": ("first_name", "last_name", "timezone")}),
        (
            "Permissions",
            {
                "fields": (
                    "is_active",
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                )
            },
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )
    inlines = (MembershipOfUserInline,)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()


# --- Memberships ----------------------------------------------------------------------------


class MembershipForm(ServiceModelForm):
    error_field_aliases = {"user_uid": "user", "organization_uid": "organization"}

    class Meta:
        model = Membership
        fields = ("user", "organization", "role")

    def apply(self, cleaned_data):
        if self.instance._state.adding:
            return membership_create(
                organization=cleaned_data["organization"],
                user=cleaned_data["user"],
                role=cleaned_data["role"],
            )
        return membership_update(membership=self.instance, role=cleaned_data["role"])


@admin.register(Membership)
class MembershipAdmin(DomainErrorAdminMixin, admin.ModelAdmin):
    form = MembershipForm
    list_display = ("user", "organization", "role", "created_at")
    list_select_related = ("user", "organization")
    list_filter = ("role",)
    search_fields = ("user__email", "organization__name")
    autocomplete_fields = ("user", "organization")

    def get_readonly_fields(self, request, obj=None):
        return ("user", "organization", "created_at") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        """Nothing left to do: MembershipForm wrote through the services."""

    def delete_model(self, request, obj):
        membership_delete(membership=obj)

    def delete_queryset(self, request, queryset):
        try:
            with transaction.atomic():
                for membership in queryset.select_related("organization"):
                    membership_delete(membership=membership)
        except DomainError as exc:
            self.message_user(request, f"Nothing was deleted: {exc.detail}", messages.ERROR)


# --- Invitations ----------------------------------------------------------------------------


class InvitationStatusFilter(admin.SimpleListFilter):
    """By the status as read now: ``expired`` is derived from ``expires_at``, never stored."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return InvitationStatus.choices

    def queryset(self, request, queryset):
        if self.value() in InvitationStatus.values:
            return queryset.with_status(self.value(), timezone.now())
        return queryset


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are sent through the API (by an organization's admins) and answered
    there by their addressee; here staff read them and may revoke pending ones."""

    list_display = (
        "email",
        "organization",
        "role",
        "status_now",
        "invited_by",
        "created_at",
        "expires_at",
        "responded_at",
    )
    list_select_related = ("organization", "invited_by")
    list_filter = (InvitationStatusFilter, "role")
    search_fields = ("email", "organization__name", "=uid")
    fields = (
        "uid",
        "organization",
        "email",
        "role",
        "status_now",
        "invited_by",
        "created_at",
        "expires_at",
        "responded_at",
    )
    readonly_fields = fields
    actions = ("revoke",)

    @admin.display(description="status")
    def status_now(self, obj: Invitation) -> str:
        return obj.status_at(timezone.now())

    def has_add_permission(self, request):
        return False  # invitations are sent through the API, which names the inviter

    def has_delete_permission(self, request, obj=None):
        return False  # answered and revoked invitations stay for audit

    @admin.action(description="Revoke selected pending invitations", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for invitation in queryset.filter(status=InvitationStatus.PENDING):
            invitation_revoke(invitation=invitation)
            revoked += 1
        self.message_user(request, f"{revoked} invitation(s) revoked.", messages.SUCCESS)


# --- API keys -------------------------------------------------------------------------------


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created through the API, which shows the key once. Only a snippet
    (``ex_live_...AbCd``) is ever shown here: never the key, its lookup part or its hash."""

    list_display = (
        "name",
        "key_snippet",
        "user",
        "organization",
        "status",
        "created_at",
        "expires_at",
        "last_used_at",
    )
    list_select_related = ("user", "organization")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "user__email", "organization__name", "=uid")
    fields = (
        "name",
        "key_snippet",
        "uid",
        "user",
        "organization",
        "scopes",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    readonly_fields = fields
    actions = ("revoke",)

    @admin.display(description="key")
    def key_snippet(self, obj: ApiKey) -> str:
        return obj.key_snippet

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at is not None:
            return "revoked"
        return "active" if obj.is_usable(timezone.now()) else "expired"

    def has_add_permission(self, request):
        return False  # a new key must be shown once to its owner: the API does that

    def has_delete_permission(self, request, obj=None):
        return False  # revoked keys stay for audit

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
            revoked += 1
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)
