"""Domain conflicts of the entities app, each with its stable code."""

from exante.api.exceptions import Conflict


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
