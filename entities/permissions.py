"""Who may write what: role and API-key scope checks shared by every view, admin and command.

Visibility (who may *see* an entity) lives in the querysets' ``visible_to``; this module
answers the next question, whether a visible entity may be written. Through an API key the
answer is narrowed twice more: to the key's one organization and to the key's scopes (which
never exceed the user's current role there, see ``ApiKey.effective_scopes``).
"""

from .models import WRITER_ROLES, Membership, Organization, Party, Role, Scope, User, acting_key


def is_unrestricted_staff(user) -> bool:
    """Staff signed in as themselves (not through an API key) may do everything."""
    return bool(user and user.is_authenticated and user.is_staff and acting_key(user) is None)


def _organization_id_of(entity) -> int | None:
    if isinstance(entity, Organization):
        return entity.pk
    if isinstance(entity, Party):
        return entity.organization_id
    return None


def role_in(user, organization_id: int) -> str | None:
    """The role ``user`` acts with in an organization; ``None`` when it has none there.

    Staff act as admins everywhere; a key acts only in its own organization, with the role
    its authentication already loaded (no query).
    """
    if not (user and user.is_authenticated):
        return None
    key = acting_key(user)
    if key is not None:
        return key.acting_role if key.organization_id == organization_id else None
    if user.is_staff:
        return Role.ADMIN
    return (
        Membership.objects.filter(user=user, organization_id=organization_id)
        .values_list("role", flat=True)
        .first()
    )


def can_write_values(user, entity) -> bool:
    """May ``user`` write metric values of ``entity`` (an Organization, Party or User)?

    Editors and admins write their organization's and its parties' values; a user's own
    values are writable by the user and by editors/admins of an organization they share.
    Through an API key: only with the ``metrics:write`` scope (which a viewer's key never
    has) and only inside the key's organization. At most one query; none for a key writing
    an organization's or a party's values.
    """
    if is_unrestricted_staff(user):
        return True
    if not (user and user.is_authenticated):
        return False
    key = acting_key(user)
    if key is not None:
        if not key.has_scope(Scope.METRICS_WRITE):
            return False
        if isinstance(entity, User):
            if entity.pk == user.pk:
                return True
            return Membership.objects.filter(
                user_id=entity.pk, organization_id=key.organization_id
            ).exists()
        return _organization_id_of(entity) == key.organization_id
    memberships = Membership.objects.filter(user=user, role__in=WRITER_ROLES)
    if isinstance(entity, User):
        if entity.pk == user.pk:
            return True
        return memberships.filter(organization__memberships__user=entity).exists()
    organization_id = _organization_id_of(entity)
    if organization_id is None:
        return False
    return memberships.filter(organization_id=organization_id).exists()


def can_manage_organization(user, organization: Organization) -> bool:
    """May ``user`` manage the organization's parties and memberships (and rename it)?

    Organization admins and staff; through a key, also the ``entities:write`` scope, which
    only an admin's (or staff's) key carries.
    """
    if is_unrestricted_staff(user):
        return True
    key = acting_key(user)
    if key is not None and not key.has_scope(Scope.ENTITIES_WRITE):
        return False
    return role_in(user, organization.pk) == Role.ADMIN


def has_scope(user, scope: str) -> bool:
    """JWT users hold every scope their role gives; a key holds only its effective scopes."""
    key = acting_key(user)
    return True if key is None else key.has_scope(scope)
