"""Routes of the entities API. Paths have no trailing slash, and one is accepted too (no
redirect, even for POST). Path uids go through the ``anyuuid`` converter, so a malformed
one is a 404 from the resolver before any view code runs."""

from django.urls import path

from exante.api.converters import register as register_converters

from .views import (
    ApiKeyViewSet,
    CurrentUserView,
    InvitationViewSet,
    MemberViewSet,
    OrganizationViewSet,
    PartyViewSet,
    UserInvitationViewSet,
    UserViewSet,
)

register_converters()


def with_optional_slash(route: str, view, name: str) -> list:
    return [path(route, view, name=name), path(f"{route}/", view)]


urlpatterns = [
    *with_optional_slash(
        "organizations",
        OrganizationViewSet.as_view({"get": "list", "post": "create"}),
        "organization-list",
    ),
    *with_optional_slash(
        "organizations/<anyuuid:uid>",
        OrganizationViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        "organization-detail",
    ),
    *with_optional_slash(
        "organizations/<anyuuid:organization_uid>/members",
        MemberViewSet.as_view({"get": "list", "post": "create"}),
        "organization-member-list",
    ),
    *with_optional_slash(
        "organizations/<anyuuid:organization_uid>/members/<anyuuid:user_uid>",
        MemberViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        "organization-member-detail",
    ),
    *with_optional_slash(
        "organizations/<anyuuid:organization_uid>/invitations",
        InvitationViewSet.as_view({"get": "list", "post": "create"}),
        "organization-invitation-list",
    ),
    *with_optional_slash(
        "organizations/<anyuuid:organization_uid>/invitations/<anyuuid:invitation_uid>",
        InvitationViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        "organization-invitation-detail",
    ),
    *with_optional_slash(
        "parties", PartyViewSet.as_view({"get": "list", "post": "create"}), "party-list"
    ),
    *with_optional_slash(
        "parties/<anyuuid:uid>",
        PartyViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        "party-detail",
    ),
    *with_optional_slash(
        "users", UserViewSet.as_view({"get": "list", "post": "create"}), "user-list"
    ),
    *with_optional_slash(
        "users/<anyuuid:uid>", UserViewSet.as_view({"get": "retrieve"}), "user-detail"
    ),
    *with_optional_slash("user", CurrentUserView.as_view(), "user-current"),
    *with_optional_slash(
        "user/invitations",
        UserInvitationViewSet.as_view({"get": "list"}),
        "user-invitation-list",
    ),
    *with_optional_slash(
        "user/invitations/<anyuuid:invitation_uid>/accept",
        UserInvitationViewSet.as_view({"post": "accept"}),
        "user-invitation-accept",
    ),
    *with_optional_slash(
        "user/invitations/<anyuuid:invitation_uid>/decline",
        UserInvitationViewSet.as_view({"post": "decline"}),
        "user-invitation-decline",
    ),
    *with_optional_slash(
        "api-keys", ApiKeyViewSet.as_view({"get": "list", "post": "create"}), "api-key-list"
    ),
    *with_optional_slash(
        "api-keys/<anyuuid:uid>",
        ApiKeyViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        "api-key-detail",
    ),
]
