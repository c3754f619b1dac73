"""Who may write what: role and API-key scope checks shared by every view, admin and command.

Visibility (who may *see* an entity) lives in the querysets' ``visible_to``; this module
answers the next question, whether a visible entity may be written. Through an API key the
answer is narrowed twice more: to the key's one organization and to the key's scopes (which
never exceed the user's current role there, see ``ApiKey.effective_scopes``).
"""

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

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


class _NotFetched:
    def __repr__(self) -> str:
        return "NOT_FETCHED"


#: ``can_write_values(role=...)`` default: the role was not fetched, query it.
NOT_FETCHED: Any = _NotFetched()


def can_write_values(user, entity, *, role: str | None = NOT_FETCHED) -> bool:
    """May ``user`` write metric values of ``entity`` (an Organization, Party or User)?

    Editors and admins write their organization's and its parties' values; a user's own
    values are writable by the user and by editors/admins of an organization they share.
    Through an API key: only with the ``metrics:write`` scope (which a viewer's key never
    has) and only inside the key's organization. At most one query; none for a key writing
    an organization's or a party's values.

    ``role`` is that one query's answer when the caller already has it (``None`` too: no
    such membership): the value of ``value_write_role(user, type(entity))`` annotated onto
    the query that fetched ``entity`` for this same ``user``. It is read only where the
    query would run, so every other rule above still decides first.
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
            return _role_grants(user, User, entity.pk, role)
        return _organization_id_of(entity) == key.organization_id
    if isinstance(entity, User):
        if entity.pk == user.pk:
            return True
        return _role_grants(user, User, entity.pk, role)
    organization_id = _organization_id_of(entity)
    if organization_id is None:
        return False
    return _role_grants(user, type(entity), organization_id, role)


def _write_role_query(user, model, ref) -> QuerySet:
    """The role that decides, where ``can_write_values`` needs the database: one row or
    none.

    ``ref`` is the entity's pk for a user and its organization's id otherwise: a value, or
    an ``OuterRef`` when the question rides along the query that fetches the entity. Both
    ways build this same queryset, so the answer cannot differ.
    """
    key = acting_key(user)
    if key is not None:
        # Only a user entity gets here: that user's role in the key's organization (any
        # role makes them a colleague whose values the key may write).
        memberships = Membership.objects.filter(user_id=ref, organization_id=key.organization_id)
    elif model is User:
        # A writer role of the caller in some organization the user also belongs to.
        memberships = Membership.objects.filter(
            user=user, role__in=WRITER_ROLES, organization__memberships__user=ref
        )
    else:
        # The caller's role in the organization (one at most: user and organization are
        # unique together). Compared below rather than filtered here: PostgreSQL plans
        # the subquery of ``value_write_role`` far faster without the ``IN``.
        memberships = Membership.objects.filter(user=user, organization_id=ref)
    return memberships.order_by().values_list("role", flat=True)[:1]


def _role_grants(user, model, ref, role) -> bool:
    if role is NOT_FETCHED:
        role = next(iter(_write_role_query(user, model, ref)), None)
    if acting_key(user) is not None:
        return role is not None
    return role in WRITER_ROLES


def value_write_role(user, model) -> Subquery | None:
    """The one database fact ``can_write_values(user, entity)`` may need about an entity of
    ``model``, as an expression to annotate onto the query that fetches that entity (then
    pass the annotated value as ``role=``); ``None`` when the rule never needs one for
    this caller and model (staff, a key writing an organization or a party).
    """
    if not (user and user.is_authenticated) or is_unrestricted_staff(user):
        return None
    if acting_key(user) is not None and model is not User:
        return None
    ref = OuterRef("organization_id") if model is Party else OuterRef("pk")
    return Subquery(_write_role_query(user, model, ref))


def write_permission_sql(context_type: str, *, via_key: bool, quote) -> str:
    """``can_write_values`` as a SQL condition, for a statement that writes a value and
    checks the right to in the same round trip.

    The statement names the entity ``e`` (a row of the context's table) and the acting
    user ``u`` (the users row, so staff status is read from the database, not the token),
    and binds ``%(key_organization_id)s`` and ``%(key_writes)s`` when ``via_key`` (the key
    itself is loaded by its authentication). The rule is the one of ``can_write_values``;
    a table-driven test runs both over the same callers and entities.
    """
    membership = quote(Membership._meta.db_table)
    writers = ", ".join(f"'{role}'" for role in WRITER_ROLES)
    if context_type == "USER":
        if via_key:
            colleague = (
                f"EXISTS (SELECT 1 FROM {membership} m WHERE m.user_id = e.id "
                "AND m.organization_id = %(key_organization_id)s)"
            )
            return f"(%(key_writes)s AND (e.id = u.id OR {colleague}))"
        colleague = (
            f"EXISTS (SELECT 1 FROM {membership} mine JOIN {membership} theirs "
            "ON theirs.organization_id = mine.organization_id "
            f"WHERE mine.user_id = u.id AND mine.role IN ({writers}) AND theirs.user_id = e.id)"
        )
        return f"(u.is_staff OR e.id = u.id OR {colleague})"
    organization_id = "e.id" if context_type == "ORGANIZATION" else "e.organization_id"
    if via_key:
        return f"(%(key_writes)s AND {organization_id} = %(key_organization_id)s)"
    return (
        f"(u.is_staff OR EXISTS (SELECT 1 FROM {membership} m WHERE m.user_id = u.id "
        f"AND m.organization_id = {organization_id} AND m.role IN ({writers})))"
    )


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


def users_addable_by(user) -> QuerySet:
    """The users ``user`` may add directly as members of an organization it manages.

    Staff (signed in as themself): anyone. Anyone else: only users it can already see, that
    is users who share one of its organizations (through a key: members of the key's
    organization). Membership opens a user's USER values to the organization, so a user
    from elsewhere joins only by accepting an invitation; the view answers such a uid like
    one that does not exist, so the endpoint does not tell which users exist either.
    """
    return User.objects.visible_to(user)


def writable_entity_uids(user, model, uids) -> set:
    """The uids among ``uids`` of entities of ``model`` (Organization, Party or User) that
    exist and that ``user`` may write values of: ``can_write_values`` for a whole batch.

    One query, fetching the entities with the role the rule reads
    (``value_write_role``), and each answer is ``can_write_values`` itself with that role:
    the batched answer cannot differ from the single one.
    """
    wanted = set(uids)
    if not wanted or not (user and user.is_authenticated):
        return set()
    fields = ["pk", "uid", "organization_id"] if model is Party else ["pk", "uid"]
    entities = model.objects.filter(uid__in=wanted).only(*fields).order_by()
    role = value_write_role(user, model)
    if role is None:
        return {entity.uid for entity in entities if can_write_values(user, entity)}
    return {
        entity.uid
        for entity in entities.annotate(write_role=role)
        if can_write_values(user, entity, role=entity.write_role)
    }
