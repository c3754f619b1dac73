"""Permission classes shared by the apps.

``ApiScopePermission`` is the default for every view (``DEFAULT_PERMISSION_CLASSES``): it
requires authentication and, for a request authenticated with an API key, the scope the view
declares. Views declare ``api_scope = "metrics"`` or ``"entities"``; a key needs
``<api_scope>:read`` for GET/HEAD/OPTIONS and ``<api_scope>:write`` otherwise. A view that
declares no scope (API key management, say) cannot be used with a key at all.

Roles (viewer/editor/admin) are checked after the entity is resolved, in
``entities.permissions``, because they depend on which organization the entity belongs to.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission


def _acting_key(user):
    return getattr(user, "api_key", None)


class ApiScopePermission(BasePermission):
    """Authenticated; an API key also needs the view's ``<api_scope>:read|write`` scope."""

    message = "You do not have permission to do this."

    def required_scope(self, method: str, view) -> str | None:
        """The scope an API key needs for ``method`` on ``view``; ``None``: keys refused."""
        scope = getattr(view, "api_scope", None)
        if scope is None:
            return None
        return f"{scope}:read" if method in SAFE_METHODS else f"{scope}:write"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        api_key = _acting_key(user)
        if api_key is None:
            return True
        needed = self.required_scope(request.method, view)
        if needed is None:
            self.message = "API keys cannot be used here; sign in with a JWT instead."
            return False
        if not api_key.has_scope(needed):
            self.message = f"This API key does not have the {needed} scope."
            return False
        return True


class IsStaffOrReadOnly(ApiScopePermission):
    """Any authenticated caller reads (a key with ``<api_scope>:read``); writes need a staff
    user signed in as themself, or a key with ``<api_scope>:admin`` (only staff can create
    such a key). Views without ``api_scope`` are treated as ``metrics``: this class guards
    the global metric catalogue."""

    message = "Only staff may change this resource."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method not in SAFE_METHODS and _acting_key(user) is None:
            return bool(user.is_staff)
        return super().has_permission(request, view)

    def required_scope(self, method: str, view) -> str | None:
        scope = getattr(view, "api_scope", None) or "metrics"
        return f"{scope}:read" if method in SAFE_METHODS else f"{scope}:admin"


class IsUnrestrictedStaff(ApiScopePermission):
    """Staff signed in as themself; API keys never qualify (a key acts inside one
    organization, and these operations reach beyond one)."""

    message = "Only staff may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if _acting_key(user) is not None:
            self.message = "API keys cannot do this; sign in as a staff user with a JWT."
            return False
        return bool(user.is_staff)

    def required_scope(self, method: str, view) -> str | None:
        return None
