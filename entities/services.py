"""Writes of the entities domain: organizations, parties, users, memberships, invitations
and API keys.

The API, the admin and management commands call these, so they all enforce the same rules.
Uniqueness is decided by the database constraints inside a savepoint (never by a prior
SELECT); a violation of a *named* constraint becomes a 409 with a stable code.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone as django_timezone

from exante.db import conflict_on, violated_constraint

from .exceptions import (
    DuplicateEmail,
    DuplicateMembership,
    DuplicatePartyRef,
    InvitationNotFound,
    LastAdmin,
)
from .models import (
    API_KEY_LAST_USED_RESOLUTION_SECONDS,
    API_KEY_LOOKUP_CONSTRAINT,
    INVITATION_PENDING_CONSTRAINT,
    ApiKey,
    Invitation,
    InvitationStatus,
    Membership,
    Organization,
    Party,
    Role,
    User,
    api_key_lookup,
    generate_api_key,
    hash_api_key,
    normalize_invitation_email,
    scopes_allowed,
)

PARTY_EXTERNAL_REF_CONSTRAINT = "party_org_external_ref_uniq"
MEMBERSHIP_CONSTRAINT = "membership_user_org_uniq"
#: ``email`` is a ``unique=True`` column: PostgreSQL names its constraint like this, and
#: ``violated_constraint`` reports the same name on SQLite.
USER_EMAIL_CONSTRAINT = f"{User._meta.db_table}_email_key"

API_KEY_MAX_EXPIRY_DAYS = 3650


def _clean(instance) -> None:
    """Field validators (timezone names, lengths); uniqueness is left to the database."""
    instance.full_clean(validate_unique=False, validate_constraints=False)


def _apply(instance, fields: dict) -> list[str]:
    changed = []
    for name, value in fields.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed


# --- Organizations ----------------------------------------------------------------------------


def organization_create(*, name: str, timezone: str = "UTC", is_active: bool = True):
    organization = Organization(name=name, timezone=timezone, is_active=is_active)
    _clean(organization)
    organization.save(force_insert=True)
    return organization


def organization_update(*, organization: Organization, **fields) -> Organization:
    """Change ``name``, ``timezone`` or ``is_active``."""
    changed = _apply(organization, fields)
    if changed:
        _clean(organization)
        organization.save(update_fields=[*changed, "updated_at"])
    return organization


# --- Parties ----------------------------------------------------------------------------------


def _save_party(party: Party, **save_kwargs) -> Party:
    def duplicate() -> DuplicatePartyRef:
        existing = (
            Party.objects.filter(
                organization_id=party.organization_id, external_ref=party.external_ref
            )
            .exclude(pk=party.pk)
            .values_list("uid", flat=True)
            .first()
        )
        return DuplicatePartyRef(
            errors={"external_ref": ["Another party of this organization has this reference."]},
            data={"uid": str(existing) if existing else None},
        )

    with conflict_on(Party, PARTY_EXTERNAL_REF_CONSTRAINT, duplicate):
        party.save(**save_kwargs)
    return party


def party_create(
    *, organization: Organization, name: str, external_ref: str = "", is_active: bool = True
) -> Party:
    """Create a party; a duplicate ``external_ref`` in the organization is a 409."""
    party = Party(
        organization=organization,
        name=name,
        external_ref=external_ref or "",
        is_active=is_active,
    )
    _clean(party)
    return _save_party(party, force_insert=True)


def party_update(*, party: Party, **fields) -> Party:
    """Change ``name``, ``external_ref`` or ``is_active``; the organization is fixed."""
    if "external_ref" in fields:
        fields["external_ref"] = fields["external_ref"] or ""
    changed = _apply(party, fields)
    if changed:
        _clean(party)
        _save_party(party, update_fields=[*changed, "updated_at"])
    return party


# --- Users ------------------------------------------------------------------------------------


def user_create(
    *,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    timezone: str = "UTC",
    is_staff: bool = False,
) -> User:
    """Create a user; the password must pass the configured validators, and an email that
    exists in any letter case is a 409 (the unique index on the lowercased email decides)."""
    user = User(
        email=User.objects.normalize_email(email).strip().lower(),
        first_name=first_name,
        last_name=last_name,
        timezone=timezone,
        is_staff=is_staff,
    )
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    user.set_password(password)
    _clean(user)

    def duplicate() -> DuplicateEmail:
        existing = User.objects.filter(email=user.email).values_list("uid", flat=True).first()
        return DuplicateEmail(
            errors={"email": ["A user with this email address already exists."]},
            data={"uid": str(existing) if existing else None},
        )

    with conflict_on(User, USER_EMAIL_CONSTRAINT, duplicate):
        user.save(force_insert=True)
    return user


# --- Memberships ------------------------------------------------------------------------------


def membership_create(*, organization: Organization, user: User, role: str) -> Membership:
    """Add a member; an existing membership is a 409 ``duplicate_membership``."""
    membership = Membership(organization=organization, user=user, role=role)
    _clean(membership)

    def duplicate() -> DuplicateMembership:
        return DuplicateMembership(
            errors={"user_uid": ["The user is already a member of this organization."]},
            data={"user_uid": str(user.uid)},
        )

    with conflict_on(Membership, MEMBERSHIP_CONSTRAINT, duplicate):
        membership.save(force_insert=True)
    return membership


def _ensure_another_admin(membership: Membership) -> None:
    """Refuse to leave an organization without an admin.

    The organization row is locked first, so two concurrent demotions of its last two
    admins serialize and the second one sees the first (SQLite serializes writers anyway).
    """
    Organization.objects.select_for_update().filter(pk=membership.organization_id).first()
    others = (
        Membership.objects.filter(organization_id=membership.organization_id, role=Role.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    )
    if not others:
        raise LastAdmin()


def membership_update(*, membership: Membership, role: str) -> Membership:
    with transaction.atomic():
        if membership.role == Role.ADMIN and role != Role.ADMIN:
            _ensure_another_admin(membership)
        if membership.role != role:
            membership.role = role
            _clean(membership)
            membership.save(update_fields=["role", "updated_at"])
    return membership


def membership_delete(*, membership: Membership) -> None:
    """Remove a member. Their API keys for the organization stop working at once, since a
    key authenticates only while its user is still a member."""
    with transaction.atomic():
        if membership.role == Role.ADMIN:
            _ensure_another_admin(membership)
        membership.delete()


# --- Invitations ------------------------------------------------------------------------------


def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: User | None
) -> Invitation:
    """Invite whoever holds ``email`` to ``organization`` with ``role``, open for
    ``INVITATION_TTL_DAYS``.

    Whether an account with that email exists changes nothing here, so the answer cannot
    tell. A pending invitation of the same organization and address (expired or not) is
    revoked and replaced by the new one: the latest offer is the one that counts. The
    partial unique index on pending invitations decides a concurrent re-invitation; the
    loser revokes the winner's row and inserts again.
    """
    now = django_timezone.now()
    invitation = Invitation(
        organization=organization,
        email=normalize_invitation_email(email),
        role=role,
        invited_by=invited_by,
        created_at=now,
        expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    _clean(invitation)
    with transaction.atomic():
        for _attempt in range(5):
            Invitation.objects.filter(
                organization=organization,
                email=invitation.email,
                status=InvitationStatus.PENDING,
            ).update(status=InvitationStatus.REVOKED, responded_at=now)
            try:
                with transaction.atomic():
                    invitation.save(force_insert=True)
            except IntegrityError as exc:
                if violated_constraint(exc, Invitation) != INVITATION_PENDING_CONSTRAINT:
                    raise
                continue
            return invitation
    raise RuntimeError("could not replace a pending invitation")  # pragma: no cover


def _answer(invitation: Invitation, *, user: User, status: str) -> bool:
    """Move an invitation still open for ``user`` to ``status``; ``False`` when it is not
    open any more. One conditional UPDATE, so of two concurrent answers one wins."""
    now = django_timezone.now()
    return bool(
        Invitation.objects.open_for(user, now)
        .filter(pk=invitation.pk)
        .update(status=status, responded_at=now)
    )


def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """``user`` accepts an invitation addressed to their email: they become a member with
    the invited role.

    Someone else's invitation, or one that is no longer pending (answered, revoked,
    expired), is an ``InvitationNotFound``. A user who is already a member gets a 409
    ``duplicate_membership`` and the invitation stays pending (their role is unchanged;
    they may decline it).
    """
    with transaction.atomic():
        if not _answer(invitation, user=user, status=InvitationStatus.ACCEPTED):
            raise InvitationNotFound(f"No invitation with uid {invitation.uid} was found.")
        return membership_create(
            organization=invitation.organization, user=user, role=invitation.role
        )


def invitation_decline(*, invitation: Invitation, user: User) -> Invitation:
    """``user`` declines an invitation addressed to them; same 404 rules as accepting."""
    if not _answer(invitation, user=user, status=InvitationStatus.DECLINED):
        raise InvitationNotFound(f"No invitation with uid {invitation.uid} was found.")
    invitation.refresh_from_db(fields=["status", "responded_at"])
    return invitation


def invitation_revoke(*, invitation: Invitation) -> Invitation:
    """Withdraw a pending invitation (expired ones too). An invitation already answered or
    revoked keeps its status: revoking it changes nothing (an accepted invitation's
    membership is removed like any other member's)."""
    Invitation.objects.filter(pk=invitation.pk, status=InvitationStatus.PENDING).update(
        status=InvitationStatus.REVOKED, responded_at=django_timezone.now()
    )
    invitation.refresh_from_db(fields=["status", "responded_at"])
    return invitation


# --- API keys ---------------------------------------------------------------------------------


def api_key_create(
    *,
    user: User,
    organization: Organization,
    name: str,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for ``user`` in ``organization``; returns ``(api_key, raw_key)``.

    The raw key exists only in the return value: store it nowhere, show it once. Scopes
    beyond what the user's role allows in the organization are a 400 naming them.
    """
    membership = Membership.objects.filter(user=user, organization=organization).first()
    role = membership.role if membership is not None else None
    if role is None and not user.is_staff:
        raise ValidationError({"organization_uid": ["You are not a member of this organization."]})
    requested = sorted(set(scopes or []))
    allowed = scopes_allowed(role=role, is_staff=user.is_staff)
    if beyond := [scope for scope in requested if scope not in allowed]:
        raise ValidationError(
            {
                "scopes": [
                    f"Your role ({role or 'none'}) in this organization does not allow: "
                    f"{', '.join(beyond)}."
                ]
            }
        )
    if expires_in_days is not None and not 1 <= expires_in_days <= API_KEY_MAX_EXPIRY_DAYS:
        raise ValidationError(
            {"expires_in_days": [f"Must be between 1 and {API_KEY_MAX_EXPIRY_DAYS}."]}
        )
    expires_at = (
        django_timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    )
    # The lookup part is random too; a collision (about 2^-36 at a million keys) is decided
    # by the unique constraint and simply retried with a fresh key.
    for _attempt in range(5):
        raw = generate_api_key()
        api_key = ApiKey(
            user=user,
            organization=organization,
            membership=membership,
            name=name,
            lookup=api_key_lookup(raw),
            key_hash=hash_api_key(raw),
            last_four=raw[-4:],
            scopes=requested,
            expires_at=expires_at,
        )
        _clean(api_key)
        try:
            with transaction.atomic():
                api_key.save(force_insert=True)
        except IntegrityError as exc:
            if violated_constraint(exc, ApiKey) != API_KEY_LOOKUP_CONSTRAINT:
                raise
            continue
        return api_key, raw
    raise RuntimeError("could not generate a unique API key lookup")  # pragma: no cover


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key; it fails authentication from the next request on. Revoking twice keeps
    the first revocation time."""
    now = django_timezone.now()
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey, now) -> None:
    """Record that a key was used, at most once a minute per key.

    Skipped without a query when the loaded row is recent enough; otherwise a conditional
    UPDATE, so concurrent requests of one key on several workers write it once, not N
    times.
    """
    threshold = now - timedelta(seconds=API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is not None and api_key.last_used_at > threshold:
        return
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=threshold)
    ).update(last_used_at=now)
    api_key.last_used_at = now
