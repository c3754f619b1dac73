"""Shape-only serializers of the entities API; rules that span rows live in
``entities.services`` and access rules in ``entities.permissions``."""

from django.utils import timezone as django_timezone
from rest_framework import serializers

from exante.fields import StrictBooleanField, StrictCharField, StrictFieldsMixin

from ..models import (
    ApiKey,
    Invitation,
    InvitationStatus,
    Membership,
    Organization,
    Party,
    Role,
    Scope,
    User,
)
from ..services import API_KEY_MAX_EXPIRY_DAYS
from ..validators import is_valid_timezone


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only; DRF's field would also take ``"7"``, ``7.0`` or ``true``."""

    default_error_messages = {"not_an_integer": "Must be a JSON integer."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    """A JSON string holding an email address; DRF's field would stringify a number."""

    default_error_messages = {"not_a_string": "Must be a JSON string."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class TimezoneField(StrictCharField):
    """An IANA timezone name (``Europe/Paris``, ``UTC``)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("help_text", "IANA timezone name, for example `Europe/Paris`.")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_valid_timezone(value):
            raise serializers.ValidationError(
                f"{value!r} is not a known IANA timezone name (for example Europe/Paris)."
            )
        return value


# --- Organizations ----------------------------------------------------------------------------


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["uid", "name", "timezone", "is_active", "created_at", "updated_at"]
        read_only_fields = fields


class OrganizationCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    name = StrictCharField(max_length=200, min_length=1)
    timezone = TimezoneField(required=False, default="UTC")
    is_active = StrictBooleanField(required=False, default=True)


class OrganizationUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    name = StrictCharField(max_length=200, min_length=1, required=False)
    timezone = TimezoneField(required=False)
    is_active = StrictBooleanField(required=False, help_text="Staff only.")


# --- Parties ----------------------------------------------------------------------------------


class PartySerializer(serializers.ModelSerializer):
    organization_uid = serializers.UUIDField(source="organization.uid", read_only=True)

    class Meta:
        model = Party
        fields = [
            "uid",
            "organization_uid",
            "name",
            "external_ref",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PartyCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    organization_uid = serializers.UUIDField(help_text="The organization the party belongs to.")
    name = StrictCharField(max_length=200, min_length=1)
    external_ref = StrictCharField(
        max_length=200,
        required=False,
        allow_blank=True,
        allow_null=True,
        default="",
        help_text="The party's id in the customer's own system; unique within the "
        "organization when not blank.",
    )
    is_active = StrictBooleanField(required=False, default=True)


class PartyUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    name = StrictCharField(max_length=200, min_length=1, required=False)
    external_ref = StrictCharField(
        max_length=200, required=False, allow_blank=True, allow_null=True
    )
    is_active = StrictBooleanField(required=False)
    organization_uid = serializers.UUIDField(
        required=False, help_text="Immutable: accepted only with its current value."
    )


# --- Users ------------------------------------------------------------------------------------


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["uid", "email", "first_name", "last_name", "timezone", "is_active"]
        read_only_fields = fields


class UserCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    email = StrictEmailField()
    password = StrictCharField(
        write_only=True,
        trim_whitespace=False,
        max_length=128,
        help_text="Checked against the password validators (length, common, numeric).",
    )
    first_name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")
    timezone = TimezoneField(required=False, default="UTC")


class UserMembershipSerializer(serializers.ModelSerializer):
    organization_uid = serializers.UUIDField(source="organization.uid", read_only=True)
    organization_name = serializers.CharField(source="organization.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["organization_uid", "organization_name", "role"]
        read_only_fields = fields


class AuthenticationInfoSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=["jwt", "api_key"])
    api_key_uid = serializers.UUIDField(allow_null=True)
    organization_uid = serializers.UUIDField(
        allow_null=True, help_text="The one organization an API key acts in; null for a JWT."
    )
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices),
        allow_null=True,
        help_text="The scopes the key may use right now (narrowed to the user's role); "
        "null for a JWT, which has everything the user's roles allow.",
    )


class CurrentUserSerializer(serializers.ModelSerializer):
    memberships = serializers.SerializerMethodField()
    authentication = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "uid",
            "email",
            "first_name",
            "last_name",
            "timezone",
            "is_staff",
            "memberships",
            "authentication",
        ]
        read_only_fields = fields

    def get_memberships(self, user) -> list[dict]:
        return UserMembershipSerializer(self.context["memberships"], many=True).data

    def get_authentication(self, user) -> AuthenticationInfoSerializer:
        api_key = getattr(user, "api_key", None)
        if api_key is None:
            return {"method": "jwt", "api_key_uid": None, "organization_uid": None, "scopes": None}
        return {
            "method": "api_key",
            "api_key_uid": api_key.uid,
            "organization_uid": self.context["key_organization_uid"],
            "scopes": sorted(api_key.effective_scopes()),
        }


# --- Memberships ------------------------------------------------------------------------------


class MemberSerializer(serializers.ModelSerializer):
    user_uid = serializers.UUIDField(source="user.uid", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    first_name = serializers.CharField(source="user.first_name", read_only=True)
    last_name = serializers.CharField(source="user.last_name", read_only=True)

    class Meta:
        model = Membership
        fields = [
            "user_uid",
            "email",
            "first_name",
            "last_name",
            "role",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MemberCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    user_uid = serializers.UUIDField(help_text="An existing user.")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)


class MemberUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


# --- Invitations ------------------------------------------------------------------------------


class InvitationStatusField(serializers.ChoiceField):
    """The status as read now: a pending invitation past ``expires_at`` is ``expired``."""

    def __init__(self, **kwargs):
        super().__init__(choices=InvitationStatus.choices, source="*", read_only=True, **kwargs)

    def to_representation(self, invitation):
        return invitation.status_at(django_timezone.now())


class InviterSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["uid", "email"]
        read_only_fields = fields


class InvitationSerializer(serializers.ModelSerializer):
    organization_uid = serializers.UUIDField(source="organization.uid", read_only=True)
    organization_name = serializers.CharField(source="organization.name", read_only=True)
    status = InvitationStatusField(
        help_text="`pending` until answered, revoked or past `expires_at` (then `expired`)."
    )
    invited_by = InviterSerializer(
        read_only=True, allow_null=True, help_text="Null once the inviter's account is gone."
    )

    class Meta:
        model = Invitation
        fields = [
            "uid",
            "organization_uid",
            "organization_name",
            "email",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
        ]
        read_only_fields = fields


class InvitationCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    email = StrictEmailField(
        help_text="Whoever signs in with this address (any letter case) may accept."
    )
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)


# --- API keys ---------------------------------------------------------------------------------


class ApiKeySerializer(serializers.ModelSerializer):
    organization_uid = serializers.UUIDField(source="organization.uid", read_only=True)
    key_snippet = serializers.CharField(
        read_only=True, help_text="`ex_live_...` and the last four characters of the key."
    )
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices),
        read_only=True,
        help_text="As created; empty means everything the user's role allows.",
    )

    class Meta:
        model = ApiKey
        fields = [
            "uid",
            "name",
            "organization_uid",
            "key_snippet",
            "scopes",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The key itself. Shown only in this response: store it now. `null` in an "
        "answer replayed for a retried `Idempotency-Key` (only the key's hash is stored).",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    name = StrictCharField(max_length=100, min_length=1, help_text="What the key is for.")
    organization_uid = serializers.UUIDField(help_text="The one organization the key acts in.")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices),
        required=False,
        allow_empty=True,
        default=list,
        help_text="Omitted or empty: everything the user's role allows (now and later).",
    )
    expires_in_days = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=API_KEY_MAX_EXPIRY_DAYS,
        help_text="Omitted or null: the key does not expire.",
    )
