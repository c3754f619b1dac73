"""The things a metric value is about: organizations, their parties, users, memberships.

Every entity has a public UUID ``uid``; the integer primary keys stay internal.
"""

import hashlib
import hmac
import secrets
import uuid

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone as django_timezone
from uuid6 import uuid7

from .validators import validate_timezone


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


#: Roles that may write metric values.
WRITER_ROLES = (Role.ADMIN, Role.EDITOR)


class Scope(models.TextChoices):
    """What an API key may do; each scope grants exactly what it names."""

    METRICS_READ = "metrics:read", "Read metric definitions and values"
    METRICS_WRITE = "metrics:write", "Write metric values"
    METRICS_ADMIN = "metrics:admin", "Create, change and delete metric definitions"
    ENTITIES_READ = "entities:read", "Read organizations, parties, users and members"
    ENTITIES_WRITE = "entities:write", "Manage parties, memberships and the organization"


#: The scopes each role carries; a key never gets more than its user's role allows, whatever
#: it was created with (a later demotion narrows existing keys at once).
ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset({Scope.METRICS_READ, Scope.ENTITIES_READ}),
    Role.EDITOR: frozenset({Scope.METRICS_READ, Scope.ENTITIES_READ, Scope.METRICS_WRITE}),
    Role.ADMIN: frozenset(
        {Scope.METRICS_READ, Scope.ENTITIES_READ, Scope.METRICS_WRITE, Scope.ENTITIES_WRITE}
    ),
}
#: Staff may do everything, including changing the global metric catalogue.
STAFF_SCOPES: frozenset[str] = frozenset(Scope.values)


def scopes_allowed(*, role: str | None, is_staff: bool) -> frozenset[str]:
    """Every scope a user with ``role`` in an organization (``None``: not a member) may hold."""
    if is_staff:
        return STAFF_SCOPES
    return ROLE_SCOPES.get(role, frozenset()) if role else frozenset()


def acting_key(user):
    """The ``ApiKey`` the request authenticated with, or ``None`` for a JWT/session user.

    API-key authentication sets ``user.api_key``; every visibility and permission rule
    reads it from here, so a key is narrowed the same way everywhere.
    """
    return getattr(user, "api_key", None)


class OrganizationQuerySet(models.QuerySet):
    def visible_to(self, user) -> "OrganizationQuerySet":
        """Organizations the user (or the API key it authenticated with) may see.

        A key sees only its own organization, and (staff aside) only while its user is
        still a member of it.
        """
        if not user or not user.is_authenticated:
            return self.none()
        api_key = acting_key(user)
        if api_key is not None:
            if user.is_staff:
                return self.filter(pk=api_key.organization_id)
            return self.filter(
                pk=api_key.organization_id,
                pk__in=Membership.objects.filter(user=user).values("organization_id"),
            )
        if user.is_staff:
            return self.all()
        return self.filter(pk__in=Membership.objects.filter(user=user).values("organization_id"))


class Organization(models.Model):
    """A tenant: the customer of this service, owner of its parties' data."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class PartyQuerySet(models.QuerySet):
    def visible_to(self, user) -> "PartyQuerySet":
        """Parties of the organizations the user may see."""
        return self.filter(organization__in=Organization.objects.visible_to(user).values("pk"))


class Party(models.Model):
    """A customer or vendor of one organization (an accounts-receivable counterparty)."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="parties")
    name = models.CharField(max_length=200)
    # The id of this party in the customer's own system; blank when they have none.
    external_ref = models.CharField(max_length=200, blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PartyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "parties"
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_ref"],
                condition=~Q(external_ref=""),
                name="party_org_external_ref_uniq",
            )
        ]

    def __str__(self) -> str:
        return self.name


class UserQuerySet(models.QuerySet):
    def visible_to(self, user) -> "UserQuerySet":
        """Users the caller may see: themself, and members of any organization the caller
        may see (through a key: members of the key's organization)."""
        if not user or not user.is_authenticated:
            return self.none()
        if user.is_staff and acting_key(user) is None:
            return self.all()
        orgs = Organization.objects.visible_to(user).values("pk")
        # A subquery rather than a join: no duplicate rows, so no DISTINCT is needed and
        # counts stay cheap.
        members = Membership.objects.filter(organization__in=orgs).values("user_id")
        return self.filter(Q(pk=user.pk) | Q(pk__in=members))


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """The service's user: logs in by email, identified publicly by ``uid``."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="Staff may use the admin and see every organization."
    )
    date_joined = models.DateTimeField(auto_now_add=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs):
        # Emails are compared case-insensitively; storing them lowercased lets the plain
        # unique index decide duplicates.
        self.email = (self.email or "").strip().lower()
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def get_short_name(self) -> str:
        return self.first_name or self.email


class Membership(models.Model):
    """A user's role in one organization."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization_id", "user_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="membership_user_org_uniq"
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"


# --- Invitations ------------------------------------------------------------------------------


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Revoked"
    #: Never stored: a pending invitation past its ``expires_at`` reads as expired.
    EXPIRED = "expired", "Expired"


#: The statuses a row may hold; ``expired`` is derived from ``expires_at`` when read.
STORED_INVITATION_STATUSES = (
    InvitationStatus.PENDING,
    InvitationStatus.ACCEPTED,
    InvitationStatus.DECLINED,
    InvitationStatus.REVOKED,
)
INVITATION_PENDING_CONSTRAINT = "invitation_org_email_pending_uniq"


def normalize_invitation_email(email: str) -> str:
    """Invitations match accounts by email, case-insensitively, like sign-in does."""
    return User.objects.normalize_email(email or "").strip().lower()


class InvitationQuerySet(models.QuerySet):
    def with_status(self, status: str, now) -> "InvitationQuerySet":
        """Invitations whose status, as read at ``now``, is ``status``."""
        if status == InvitationStatus.PENDING:
            return self.filter(status=InvitationStatus.PENDING, expires_at__gt=now)
        if status == InvitationStatus.EXPIRED:
            return self.filter(status=InvitationStatus.PENDING, expires_at__lte=now)
        return self.filter(status=status)

    def addressed_to(self, user) -> "InvitationQuerySet":
        """Invitations sent to the email of ``user``'s account (none for anonymous callers)."""
        if not user or not user.is_authenticated:
            return self.none()
        return self.filter(email=normalize_invitation_email(user.email))

    def open_for(self, user, now) -> "InvitationQuerySet":
        """The invitations ``user`` may still answer: addressed to them, pending, unexpired."""
        return self.addressed_to(user).with_status(InvitationStatus.PENDING, now)


class Invitation(models.Model):
    """An organization's offer of a role to whoever holds an email address.

    It grants nothing until the holder of an account with that email accepts it: an
    organization's admin brings in someone from outside its organizations only this way,
    so a user's data opens to a new organization only with the user taking part.
    """

    uid = models.UUIDField(default=uuid7, unique=True, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    # Lowercased on save, so the equality match and the unique index are case-insensitive.
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    status = models.CharField(
        max_length=10,
        choices=[(s.value, s.label) for s in STORED_INVITATION_STATUSES],
        default=InvitationStatus.PENDING,
    )
    invited_by = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invitations_sent",
    )
    # Set by the service with the same clock reading as ``expires_at``.
    created_at = models.DateTimeField(default=django_timezone.now, editable=False)
    expires_at = models.DateTimeField()
    # When it was accepted, declined or revoked.
    responded_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One open offer per organization and address: a re-invitation replaces it.
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=Q(status="pending"),
                name=INVITATION_PENDING_CONSTRAINT,
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in STORED_INVITATION_STATUSES]),
                name="invitation_status_valid",
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="invitation_role_valid"),
        ]
        indexes = [models.Index(fields=["email", "status"], name="invitation_email_status_idx")]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization} ({self.role})"

    def save(self, *args, **kwargs):
        self.email = normalize_invitation_email(self.email)
        super().save(*args, **kwargs)

    def status_at(self, now) -> str:
        """The status as read at ``now``: a pending invitation past its expiry is expired."""
        if self.status == InvitationStatus.PENDING and self.expires_at <= now:
            return InvitationStatus.EXPIRED
        return self.status


# --- API keys ---------------------------------------------------------------------------------

#: Every key starts with this, so a leaked key is recognisable (secret scanners) and the
#: authentication class can tell a key from a JWT without trying to decode it.
API_KEY_PREFIX = "ex_live_"
#: Characters after the prefix stored in clear and indexed, so authentication is one indexed
#: lookup; 12 url-safe characters are 72 random bits, far from colliding.
API_KEY_LOOKUP_LENGTH = 12
#: Random bytes per key: 32 bytes are 43 url-safe characters (256 bits).
API_KEY_RANDOM_BYTES = 32
#: ``last_used_at`` is written at most this often per key, not on every request.
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
API_KEY_LOOKUP_CONSTRAINT = "apikey_lookup_uniq"


def hash_api_key(raw_key: str) -> str:
    """HMAC-SHA256 of the whole key under a server-side secret, hex encoded.

    A fast keyed hash is the right tool here, unlike for passwords: a key carries 256 random
    bits, so nobody can guess it from its hash however fast the hash is, while a slow
    password hash (PBKDF2, Argon2) would add tens of milliseconds to every request. The
    server secret means a copy of the database alone cannot even check a guess.
    """
    secret = (getattr(settings, "API_KEY_SECRET", "") or settings.SECRET_KEY).encode()
    return hmac.new(secret, raw_key.encode(), hashlib.sha256).hexdigest()


def generate_api_key() -> str:
    """A new random key: ``ex_live_`` + 43 url-safe characters."""
    return API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_RANDOM_BYTES)


def api_key_lookup(raw_key: str) -> str:
    """The public, indexed part of a key (the characters right after the prefix)."""
    return raw_key[len(API_KEY_PREFIX) : len(API_KEY_PREFIX) + API_KEY_LOOKUP_LENGTH]


class ApiKeyQuerySet(models.QuerySet):
    def owned_by(self, user) -> "ApiKeyQuerySet":
        """The keys a user created for themself (keys are never shared)."""
        if not user or not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def usable(self, now) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiKey(models.Model):
    """A long-lived credential for an integration: acts for its user inside one organization,
    within its scopes and never beyond the user's current role there.

    Only ``lookup`` (public, indexed) and an HMAC of the whole key are stored; the key itself
    is shown once, when created. Revoking sets ``revoked_at`` (the row stays for audit).
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    # The membership the key acts through, so authentication reads the user's *current* role
    # with a plain join. Removing the member nulls it and the key stops working for good
    # (adding the user back does not revive it). Staff keys may have none.
    membership = models.ForeignKey(
        Membership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="api_keys",
    )
    name = models.CharField(max_length=100)
    lookup = models.CharField(max_length=API_KEY_LOOKUP_LENGTH, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    # Lets a user tell keys apart (``ex_live_...AbCd``) without storing the key.
    last_four = models.CharField(max_length=4, editable=False)
    # An empty list means "everything the user's role allows".
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["lookup"], name=API_KEY_LOOKUP_CONSTRAINT),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_snippet})"

    @property
    def key_snippet(self) -> str:
        return f"{API_KEY_PREFIX}...{self.last_four}"

    def is_usable(self, now) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now

    @property
    def member_role(self) -> str | None:
        """The user's current role in the key's organization (``None``: no longer a member).

        Authentication loads the membership in its one query; elsewhere it costs one query.
        """
        return self.membership.role if self.membership_id is not None else None

    @property
    def acting_role(self) -> str | None:
        """The role the key acts with: staff act as admins of any organization."""
        if self.user.is_staff:
            return Role.ADMIN
        return self.member_role

    def effective_scopes(self) -> frozenset[str]:
        """The scopes this key may use right now: those it was given (all when none were)
        narrowed to what its user's current role allows."""
        allowed = scopes_allowed(role=self.member_role, is_staff=self.user.is_staff)
        return allowed & frozenset(self.scopes) if self.scopes else allowed

    def has_scope(self, scope: str) -> bool:
        return scope in self.effective_scopes()
