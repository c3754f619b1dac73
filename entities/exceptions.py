"""Domain conflicts of the entities app, each with its stable code."""

from rest_framework import status

from exante.errors import Conflict, DomainError


class DuplicateEmail(Conflict):
    default_detail = "A user with this email address already exists."
    default_code = "duplicate_email"


class DuplicatePartyRef(Conflict):
    default_detail = "A party with this external_ref already exists in the organization."
    default_code = "duplicate_party"


class DuplicateMembership(Conflict):
    default_detail = "The user is already a member of this organization."
    default_code = "duplicate_membership"


class LastAdmin(Conflict):
    default_detail = "An organization needs at least one admin; make another member admin first."
    default_code = "last_admin"


class InvitationNotFound(DomainError):
    """An invitation the caller may not answer: someone else's, or no longer pending. All
    of these read like one that does not exist, so the answer discloses nothing."""

    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "No such invitation was found."
    default_code = "not_found"
