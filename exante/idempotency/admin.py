from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Subquery

from .models import IdempotencyKey


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    """Read-only, for support: which writes a client's retries were answered from."""

    list_display = ("key", "user", "method", "path", "status_code", "created_at", "expires_at")
    list_filter = ("method", "status_code")
    search_fields = ("key", "=user_uid", "path")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    fields = (
        "user_uid",
        "key",
        "method",
        "path",
        "fingerprint",
        "status_code",
        "location",
        "etag",
        "created_at",
        "expires_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        users = get_user_model().objects.filter(uid=OuterRef("user_uid"))
        # In the list's one query, not one per row.
        return (
            super().get_queryset(request).annotate(user_email=Subquery(users.values("email")[:1]))
        )

    @admin.display(description="user", ordering="user_email")
    def user(self, obj: IdempotencyKey) -> str:
        return obj.user_email or str(obj.user_uid)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
