"""Entities API (organizations, parties, users, members, invitations) and API keys: thin
views that parse, check access, call one service or selector and serialize.

Every queryset starts from ``visible_to(request.user)``, so lists, counts and lookups only
ever see what the caller may see, and an invisible object is a 404 worded exactly like a
missing one. Writes on a visible object the caller may not change are a 403.
"""

from django.utils import timezone as django_timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from exante.api.idempotency import WITHHELD_ATTRIBUTE
from exante.api.permissions import ApiScopePermission, IsUnrestrictedStaff
from exante.api.schema import error_response
from exante.api.serializers import EmptyBodySerializer

from .. import services
from ..filters import (
    ApiKeyFilter,
    InvitationFilter,
    MemberFilter,
    OrganizationFilter,
    PartyFilter,
    UserFilter,
)
from ..models import ApiKey, Invitation, Membership, Organization, Party, User
from ..permissions import can_manage_organization, is_unrestricted_staff, users_addable_by
from .serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    CurrentUserSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MemberCreateSerializer,
    MemberSerializer,
    MemberUpdateSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
    OrganizationUpdateSerializer,
    PartyCreateSerializer,
    PartySerializer,
    PartyUpdateSerializer,
    UserCreateSerializer,
    UserMembershipSerializer,
    UserSerializer,
)

NOT_FOUND = "No {kind} with uid {uid} was found."
FORBIDDEN_MANAGE = "Only admins of this organization (and staff) may change it."


def _uid_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH, description=description)


def _created(request, body, location: str) -> Response:
    return Response(
        body,
        status=status.HTTP_201_CREATED,
        headers={"Location": request.build_absolute_uri(location)},
    )


def _visible_organization(request, uid):
    return Organization.objects.visible_to(request.user).filter(uid=uid).first()


def _require_manager(request, organization: Organization) -> None:
    if not can_manage_organization(request.user, organization):
        raise PermissionDenied(FORBIDDEN_MANAGE)


class OrganizationScopedMixin:
    """Resolves ``{organization_uid}`` of a nested route into ``self.organization``, once,
    after authentication: 404 when it does not exist or the caller cannot see it."""

    organization: Organization | None = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        uid = kwargs["organization_uid"]
        self.organization = _visible_organization(request, uid)
        if self.organization is None:
            raise NotFound(NOT_FOUND.format(kind="organization", uid=uid))


class UidLookupMixin:
    """``get_object`` through the view's (visibility-narrowed) queryset, by ``uid``.

    The URL converter already guarantees a well-formed UUID; absent and invisible objects
    answer the same 404 with the same words.
    """

    lookup_field = "uid"
    lookup_url_kwarg = "uid"
    not_found_kind = "object"

    def get_object(self):
        uid = self.kwargs[self.lookup_url_kwarg]
        instance = self.get_queryset().filter(uid=uid).first()
        if instance is None:
            raise NotFound(NOT_FOUND.format(kind=self.not_found_kind, uid=uid))
        self.check_object_permissions(self.request, instance)
        return instance


_ORG_UID = _uid_parameter("uid", "The organization's uid.")
_NOT_FOUND_DOC = "Not found, or not visible to the caller (`not_found`); indistinguishable."


# --- Organizations ----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List organizations",
        description=(
            "The organizations the caller belongs to (staff: all; an API key: its own). "
            "Default sort `name`."
        ),
    ),
    retrieve=extend_schema(summary="Get an organization", parameters=[_ORG_UID]),
    create=extend_schema(
        summary="Create an organization",
        description=(
            "Staff only (signed in with a JWT; API keys act inside one existing "
            "organization and cannot create one). The creator is not made a member."
        ),
        request=OrganizationCreateSerializer,
        responses={201: OrganizationSerializer},
    ),
    partial_update=extend_schema(
        summary="Update an organization",
        description=(
            "Organization admins and staff change `name` and `timezone`; only staff change "
            "`is_active` (sending its current value is accepted from admins). Other members "
            "get a 403."
        ),
        parameters=[_ORG_UID],
        request=OrganizationUpdateSerializer,
        responses={200: OrganizationSerializer},
    ),
)
class OrganizationViewSet(
    UidLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Organizations (tenants)."""

    api_scope = "entities"
    serializer_class = OrganizationSerializer
    filterset_class = OrganizationFilter
    not_found_kind = "organization"
    sort_fields = {"name": "name", "created_at": "created_at", "updated_at": "updated_at"}
    default_sort = "name"
    sort_tiebreak = ("id",)

    def get_queryset(self):
        return Organization.objects.visible_to(self.request.user)

    def get_permissions(self):
        if self.action == "create":
            return [IsUnrestrictedStaff()]
        return super().get_permissions()

    def create(self, request, *args, **kwargs):
        serializer = OrganizationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = services.organization_create(**serializer.validated_data)
        body = OrganizationSerializer(organization).data
        return _created(request, body, f"/api/organizations/{organization.uid}")

    def partial_update(self, request, *args, **kwargs):
        organization = self.get_object()
        _require_manager(request, organization)
        serializer = OrganizationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        if (
            "is_active" in fields
            and fields["is_active"] != organization.is_active
            and not is_unrestricted_staff(request.user)
        ):
            raise PermissionDenied("Only staff may activate or deactivate an organization.")
        organization = services.organization_update(organization=organization, **fields)
        return Response(OrganizationSerializer(organization).data)


# --- Parties ----------------------------------------------------------------------------------

_PARTY_UID = _uid_parameter("uid", "The party's uid.")


@extend_schema_view(
    list=extend_schema(
        summary="List parties",
        description=(
            "Parties of the organizations the caller belongs to. Filter by "
            "`organization_uid`, `is_active`, or `search` (name or external_ref). Default "
            "sort `name`."
        ),
    ),
    retrieve=extend_schema(summary="Get a party", parameters=[_PARTY_UID]),
    create=extend_schema(
        summary="Create a party",
        description=(
            "Organization admins and staff. An `organization_uid` that does not exist or "
            "that the caller cannot see is a 400 on that field (the same words for both); "
            "a visible organization the caller may not manage is a 403. A non-blank "
            "`external_ref` already used in the organization is a 409 `duplicate_party` "
            "with the existing party's `uid` in `data`."
        ),
        request=PartyCreateSerializer,
        responses={
            201: PartySerializer,
            409: error_response(409, "`duplicate_party`: the external_ref is taken."),
        },
    ),
    partial_update=extend_schema(
        summary="Update a party",
        description=(
            "Organization admins and staff change `name`, `external_ref` and `is_active`. "
            "`organization_uid` is immutable: a different value is a 400. A duplicate "
            "`external_ref` is a 409 `duplicate_party`."
        ),
        parameters=[_PARTY_UID],
        request=PartyUpdateSerializer,
        responses={
            200: PartySerializer,
            409: error_response(409, "`duplicate_party`: the external_ref is taken."),
        },
    ),
)
class PartyViewSet(
    UidLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Customers and vendors of an organization."""

    api_scope = "entities"
    serializer_class = PartySerializer
    filterset_class = PartyFilter
    not_found_kind = "party"
    sort_fields = {
        "name": "name",
        "external_ref": "external_ref",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    default_sort = "name"
    sort_tiebreak = ("id",)

    def get_queryset(self):
        return Party.objects.visible_to(self.request.user).select_related("organization")

    def create(self, request, *args, **kwargs):
        serializer = PartyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        organization_uid = fields.pop("organization_uid")
        organization = _visible_organization(request, organization_uid)
        if organization is None:
            message = NOT_FOUND.format(kind="organization", uid=organization_uid)
            raise ValidationError({"organization_uid": [message]})
        _require_manager(request, organization)
        party = services.party_create(organization=organization, **fields)
        return _created(request, PartySerializer(party).data, f"/api/parties/{party.uid}")

    def partial_update(self, request, *args, **kwargs):
        party = self.get_object()
        _require_manager(request, party.organization)
        serializer = PartyUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        organization_uid = fields.pop("organization_uid", None)
        if organization_uid is not None and organization_uid != party.organization.uid:
            raise ValidationError(
                {"organization_uid": ["A party cannot move to another organization."]}
            )
        party = services.party_update(party=party, **fields)
        return Response(PartySerializer(party).data)


# --- Users ------------------------------------------------------------------------------------

_USER_UID = _uid_parameter("uid", "The user's uid.")


@extend_schema_view(
    list=extend_schema(
        summary="List users",
        description=(
            "The caller and the members of every organization the caller belongs to "
            "(staff: everyone; an API key: members of its organization). Filter by "
            "`organization_uid`, `is_active`, or `search` (email, first or last name). "
            "Default sort `email`."
        ),
    ),
    retrieve=extend_schema(summary="Get a user", parameters=[_USER_UID]),
    create=extend_schema(
        summary="Create a user",
        description=(
            "Staff only (signed in with a JWT). The password must pass the password "
            "validators (400 on `password`). An email that exists, in any letter case, is "
            "a 409 `duplicate_email`. The new user belongs to no organization until added "
            "with `POST /api/organizations/{uid}/members`."
        ),
        request=UserCreateSerializer,
        responses={
            201: UserSerializer,
            409: error_response(409, "`duplicate_email`: the email is taken."),
        },
    ),
)
class UserViewSet(
    UidLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Users of the service, as far as the caller shares an organization with them."""

    api_scope = "entities"
    serializer_class = UserSerializer
    filterset_class = UserFilter
    not_found_kind = "user"
    sort_fields = {"email": "email", "first_name": "first_name", "last_name": "last_name"}
    default_sort = "email"
    sort_tiebreak = ("id",)

    def get_queryset(self):
        return User.objects.visible_to(self.request.user)

    def get_permissions(self):
        if self.action == "create":
            return [IsUnrestrictedStaff()]
        return super().get_permissions()

    def create(self, request, *args, **kwargs):
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_create(**serializer.validated_data)
        return _created(request, UserSerializer(user).data, f"/api/users/{user.uid}")


class CurrentUserView(APIView):
    """``GET /api/user``: who am I, in which organizations, with which role."""

    api_scope = "entities"

    @extend_schema(
        operation_id="user_current",
        summary="The caller",
        description=(
            "The signed-in user with their memberships (organization uid, name and role). "
            "Through an API key only the key's organization is listed, and `authentication` "
            "shows the key's effective scopes."
        ),
        responses={200: CurrentUserSerializer},
    )
    def get(self, request, *args, **kwargs):
        user = request.user
        visible = Organization.objects.visible_to(user).values("pk")
        memberships = (
            Membership.objects.filter(user=user, organization__in=visible)
            .select_related("organization")
            .order_by("organization__name", "organization_id")
        )
        api_key = getattr(user, "api_key", None)
        context = {
            "memberships": memberships,
            "key_organization_uid": (
                Organization.objects.filter(pk=api_key.organization_id)
                .values_list("uid", flat=True)
                .first()
                if api_key is not None
                else None
            ),
        }
        return Response(CurrentUserSerializer(user, context=context).data)


# --- Memberships ------------------------------------------------------------------------------

_MEMBER_PARAMETERS = [
    _uid_parameter("organization_uid", "The organization's uid."),
]
_MEMBER_DETAIL_PARAMETERS = [
    *_MEMBER_PARAMETERS,
    _uid_parameter("user_uid", "The member's user uid."),
]


@extend_schema_view(
    list=extend_schema(
        summary="List an organization's members",
        description=(
            "Every member of the organization may list its members. Filter by `role` or "
            "`search` (email, first or last name). Default sort `email`."
        ),
        parameters=_MEMBER_PARAMETERS,
    ),
    retrieve=extend_schema(summary="Get a member", parameters=_MEMBER_DETAIL_PARAMETERS),
    create=extend_schema(
        summary="Add a member",
        description=(
            "Organization admins and staff add an existing user (`user_uid`) with a `role` "
            "(default `viewer`). Staff may add any user; an organization admin only a user "
            "who already shares one of the admin's organizations (through an API key: a "
            "member of the key's organization). Any other uid is a 400 on `user_uid` worded "
            "exactly like a uid that does not exist, so the answer never tells which users "
            "exist; bring such a user in with an invitation "
            "(`POST /api/organizations/{uid}/invitations`). An existing member is a 409 "
            "`duplicate_membership`."
        ),
        parameters=_MEMBER_PARAMETERS,
        request=MemberCreateSerializer,
        responses={
            201: MemberSerializer,
            409: error_response(409, "`duplicate_membership`: already a member."),
        },
    ),
    partial_update=extend_schema(
        summary="Change a member's role",
        description=(
            "Organization admins and staff. Demoting the last admin is a 409 `last_admin`."
        ),
        parameters=_MEMBER_DETAIL_PARAMETERS,
        request=MemberUpdateSerializer,
        responses={
            200: MemberSerializer,
            409: error_response(409, "`last_admin`: the organization needs an admin."),
        },
    ),
    destroy=extend_schema(
        summary="Remove a member",
        description=(
            "Organization admins and staff. The user's API keys for this organization stop "
            "working at once. Removing the last admin is a 409 `last_admin`."
        ),
        parameters=_MEMBER_DETAIL_PARAMETERS,
        responses={
            200: OpenApiResponse(description="Removed; `data` is `{}`."),
            409: error_response(409, "`last_admin`: the organization needs an admin."),
        },
    ),
)
class MemberViewSet(
    OrganizationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Memberships of one organization, nested under it (resolved once, after auth)."""

    api_scope = "entities"
    serializer_class = MemberSerializer
    filterset_class = MemberFilter
    sort_fields = {"email": "user__email", "role": "role", "created_at": "created_at"}
    default_sort = "email"
    sort_tiebreak = ("id",)

    def get_queryset(self):
        if self.organization is None:  # schema generation
            return Membership.objects.none()
        return Membership.objects.filter(organization=self.organization).select_related("user")

    def get_object(self):
        uid = self.kwargs["user_uid"]
        membership = self.get_queryset().filter(user__uid=uid).first()
        if membership is None:
            raise NotFound(f"No member with uid {uid} was found in this organization.")
        return membership

    def create(self, request, *args, **kwargs):
        _require_manager(request, self.organization)
        serializer = MemberCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_uid = serializer.validated_data["user_uid"]
        user = users_addable_by(request.user).filter(uid=user_uid).first()
        if user is None:
            message = NOT_FOUND.format(kind="user", uid=user_uid)
            raise ValidationError({"user_uid": [message]})
        membership = services.membership_create(
            organization=self.organization, user=user, role=serializer.validated_data["role"]
        )
        location = f"/api/organizations/{self.organization.uid}/members/{user.uid}"
        return _created(request, MemberSerializer(membership).data, location)

    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        _require_manager(request, self.organization)
        serializer = MemberUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_update(
            membership=membership, role=serializer.validated_data["role"]
        )
        return Response(MemberSerializer(membership).data)

    def destroy(self, request, *args, **kwargs):
        membership = self.get_object()
        _require_manager(request, self.organization)
        services.membership_delete(membership=membership)
        return Response({})


# --- Invitations ------------------------------------------------------------------------------


class ManagesEntities(ApiScopePermission):
    """Authenticated; an API key needs ``entities:write`` whatever the method, since even
    reading an organization's invitations is managing it (the role is checked in the view)."""

    def required_scope(self, method: str, view) -> str | None:
        return "entities:write"


_INVITATION_UID = _uid_parameter("invitation_uid", "The invitation's uid.")
_INVITATION_NOT_FOUND = "No invitation with uid {uid} was found."
_MANAGERS_ONLY = (
    "Organization admins and staff (other members get a 403; a caller who cannot see the "
    "organization a 404)."
)


class InvitationLookupMixin:
    """``get_object`` by the path's ``invitation_uid`` through the view's queryset: one
    outside it (another organization's, or not the caller's to answer) reads exactly like
    one that does not exist."""

    def get_object(self):
        uid = self.kwargs["invitation_uid"]
        invitation = self.get_queryset().filter(uid=uid).first()
        if invitation is None:
            raise NotFound(_INVITATION_NOT_FOUND.format(uid=uid))
        return invitation


@extend_schema_view(
    list=extend_schema(
        summary="List an organization's invitations",
        description=(
            f"{_MANAGERS_ONLY} Every invitation the organization sent, whatever its status. "
            "Filter by `status` (as read now: `expired` is a pending invitation past "
            "`expires_at`), `role` or `search` (email). Default sort `-created_at`."
        ),
        parameters=_MEMBER_PARAMETERS,
    ),
    retrieve=extend_schema(
        summary="Get an invitation of an organization",
        description=_MANAGERS_ONLY,
        parameters=[*_MEMBER_PARAMETERS, _INVITATION_UID],
    ),
    create=extend_schema(
        summary="Invite someone by email",
        description=(
            f"{_MANAGERS_ONLY} Invites whoever signs in with `email` (any letter case) to "
            "the organization with `role` (default `viewer`); the invitation stays open for "
            "`INVITATION_TTL_DAYS` days (default 7). The answer is the same 201 whether or "
            "not an account with that email exists, and nothing is granted until its holder "
            "accepts (`POST /api/user/invitations/{invitation_uid}/accept`). Inviting an "
            "address that already has a pending invitation to this organization revokes "
            "that one and answers the new one: the latest invitation is the one that counts. "
            "This is how an admin brings in a user who shares none of the admin's "
            "organizations."
        ),
        parameters=_MEMBER_PARAMETERS,
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer},
    ),
    destroy=extend_schema(
        summary="Revoke an invitation",
        description=(
            f"{_MANAGERS_ONLY} A pending (or expired) invitation becomes `revoked` and can "
            "no longer be accepted. One already accepted, declined or revoked keeps its "
            "status (remove the member to undo an accepted one)."
        ),
        parameters=[*_MEMBER_PARAMETERS, _INVITATION_UID],
        responses={200: OpenApiResponse(description="Revoked; `data` is `{}`.")},
    ),
)
class InvitationViewSet(
    OrganizationScopedMixin,
    InvitationLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Invitations an organization sent, nested under it; only its managers see them."""

    api_scope = "entities"
    permission_classes = [ManagesEntities]
    serializer_class = InvitationSerializer
    filterset_class = InvitationFilter
    sort_fields = {"created_at": "created_at", "expires_at": "expires_at", "email": "email"}
    default_sort = "-created_at"
    sort_tiebreak = ("-id",)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        _require_manager(request, self.organization)

    def get_queryset(self):
        if self.organization is None:  # schema generation
            return Invitation.objects.none()
        return Invitation.objects.filter(organization=self.organization).select_related(
            "organization", "invited_by"
        )

    def create(self, request, *args, **kwargs):
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation = services.invitation_create(
            organization=self.organization,
            invited_by=request.user,
            **serializer.validated_data,
        )
        location = f"/api/organizations/{self.organization.uid}/invitations/{invitation.uid}"
        return _created(request, InvitationSerializer(invitation).data, location)

    def destroy(self, request, *args, **kwargs):
        services.invitation_revoke(invitation=self.get_object())
        return Response({})


_INVITEE_404 = error_response(
    404,
    "`not_found`: no such invitation, someone else's, or one no longer pending (accepted, "
    "declined, revoked or expired); indistinguishable.",
)


@extend_schema_view(
    list=extend_schema(
        operation_id="user_invitations_list",
        summary="My pending invitations",
        description=(
            "Invitations addressed to the caller's email (any letter case) that are still "
            "pending and not expired, with the inviting organization. Requires a JWT. "
            "Default sort `-created_at`."
        ),
    ),
)
class UserInvitationViewSet(InvitationLookupMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's own pending invitations. No ``api_scope``: only the user in person
    answers an invitation, so a leaked key cannot join its user to an organization."""

    api_scope = None
    serializer_class = InvitationSerializer
    sort_fields = {"created_at": "created_at", "expires_at": "expires_at"}
    default_sort = "-created_at"
    sort_tiebreak = ("-id",)

    def get_queryset(self):
        return Invitation.objects.open_for(self.request.user, django_timezone.now()).select_related(
            "organization", "invited_by"
        )

    @extend_schema(
        operation_id="user_invitations_accept",
        summary="Accept an invitation",
        description=(
            "Makes the caller a member of the inviting organization with the invited role "
            "and answers the membership. Requires a JWT: an invitation is answered by its "
            "addressee in person, never by an integration. From then on the organization's "
            "members see the caller's USER values and its editors and admins may write "
            "them: that is what accepting agrees to. A caller who is already a member gets "
            "a 409 `duplicate_membership`; the invitation stays pending and the role "
            "unchanged. A body, if any, must be empty or `{}`."
        ),
        parameters=[_INVITATION_UID],
        request=None,
        responses={
            201: UserMembershipSerializer,
            404: _INVITEE_404,
            409: error_response(409, "`duplicate_membership`: already a member."),
        },
    )
    def accept(self, request, *args, **kwargs):
        invitation = self.get_object()
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        membership = services.invitation_accept(invitation=invitation, user=request.user)
        location = f"/api/organizations/{invitation.organization.uid}/members/{request.user.uid}"
        return _created(request, UserMembershipSerializer(membership).data, location)

    @extend_schema(
        operation_id="user_invitations_decline",
        summary="Decline an invitation",
        description=(
            "The invitation becomes `declined` and can no longer be accepted. Requires a "
            "JWT. Answers the invitation. A body, if any, must be empty or `{}`."
        ),
        parameters=[_INVITATION_UID],
        request=None,
        responses={200: InvitationSerializer, 404: _INVITEE_404},
    )
    def decline(self, request, *args, **kwargs):
        invitation = self.get_object()
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        invitation = services.invitation_decline(invitation=invitation, user=request.user)
        return Response(InvitationSerializer(invitation).data)


# --- API keys ---------------------------------------------------------------------------------

_KEY_UID = _uid_parameter("uid", "The API key's uid.")


@extend_schema_view(
    list=extend_schema(
        summary="List my API keys",
        description=(
            "The caller's own keys, revoked and expired ones included, never the key "
            "itself (`key_snippet` shows its last four characters). Requires a JWT. "
            "Default sort `-created_at`."
        ),
    ),
    retrieve=extend_schema(summary="Get one of my API keys", parameters=[_KEY_UID]),
    create=extend_schema(
        summary="Create an API key",
        description=(
            "Requires a JWT (a key cannot mint keys). The key acts for the caller inside "
            "`organization_uid` (which the caller must belong to; staff: any) and only "
            "within `scopes`; omitted or empty means everything the caller's role allows, "
            "and a scope beyond the role is a 400 naming it. `expires_in_days` (1–3650) "
            "sets an expiry. The response is the only time the key is shown: only its hash "
            "is stored, so a retry with the same `Idempotency-Key` replays this answer with "
            "`key: null` (the same `uid`; revoke it and create another if the key was lost)."
        ),
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
    ),
    destroy=extend_schema(
        summary="Revoke an API key",
        description=(
            "The key fails authentication (401) from the next request on. Revoking an "
            "already revoked key is a no-op that keeps the first revocation time."
        ),
        parameters=[_KEY_UID],
        responses={200: OpenApiResponse(description="Revoked; `data` is `{}`.")},
    ),
)
class ApiKeyViewSet(
    UidLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's API keys. No ``api_scope``: API keys cannot manage API keys, so a
    leaked key cannot be used to mint or extend credentials."""

    api_scope = None
    serializer_class = ApiKeySerializer
    filterset_class = ApiKeyFilter
    not_found_kind = "API key"
    sort_fields = {
        "created_at": "created_at",
        "name": "name",
        "last_used_at": "last_used_at",
        "expires_at": "expires_at",
    }
    default_sort = "-created_at"
    sort_tiebreak = ("-id",)

    def get_queryset(self):
        return ApiKey.objects.owned_by(self.request.user).select_related("organization")

    def create(self, request, *args, **kwargs):
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        organization_uid = fields.pop("organization_uid")
        organization = _visible_organization(request, organization_uid)
        if organization is None:
            message = NOT_FOUND.format(kind="organization", uid=organization_uid)
            raise ValidationError({"organization_uid": [message]})
        api_key, raw = services.api_key_create(
            user=request.user, organization=organization, **fields
        )
        api_key.key = raw  # on this instance only, for the one response that shows it
        body = ApiKeyCreatedSerializer(api_key).data
        response = _created(request, body, f"/api/api-keys/{api_key.uid}")
        # Only the key's hash is ever stored, a replayed answer included.
        setattr(response, WITHHELD_ATTRIBUTE, ("key",))
        return response

    def destroy(self, request, *args, **kwargs):
        services.api_key_revoke(api_key=self.get_object())
        return Response({})
