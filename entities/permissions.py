"""Who may write what: role checks shared by every view, admin and command.

Visibility (who may *see* an entity) lives in the querysets' ``visible_to``; this module
answers the next question, whether a visible entity may be written.
"""

from .models import WRITER_ROLES, Membership, Organization, Party, User


def _acting_key(user):
    return getattr(user, "api_key", None)


def is_unrestricted_staff(user) -> bool:
    """Staff signed in as themselves (not through an API key) may do everything."""
    return bool(user and user.is_authenticated and user.is_staff and _acting_key(user) is None)


def can_write_values(user, entity) -> bool:
    """May ``user`` write metric values of ``entity`` (an Organization, Party or User)?

    Editors and admins write their organization's and its parties' values; a user's own
    values are writable by the user and by editors/admins of an organization they share.
    """
    if is_unrestricted_staff(user):
        return True
    if not (user and user.is_authenticated):
        return False
    memberships = Membership.objects.filter(user=user, role__in=WRITER_ROLES)
    if isinstance(entity, Organization):
        return memberships.filter(organization_id=entity.pk).exists()
    if isinstance(entity, Party):
        return memberships.filter(organization_id=entity.organization_id).exists()
    if isinstance(entity, User):
        if entity.pk == user.pk:
            return True
        return memberships.filter(organization__memberships__user=entity).exists()
    return False
