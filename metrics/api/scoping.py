"""Nested URL scopes resolved once per request, after authentication (PostHog's scoped
viewsets, Sentry's ``convert_args``).

A view mounted under ``{context_type}/{entity_uid}`` mixes in ``EntityScopedMixin`` and
then works with ``self.entity`` and ``self.context_type``; it never reads the URL kwargs
itself, so no action can forget the visibility check.
"""

from rest_framework.exceptions import NotFound

from ..selectors import entity_get

#: The same words whether the entity does not exist or belongs to another tenant, so a
#: 404 never discloses that another organization's entity exists.
ENTITY_NOT_FOUND = "No {context_type} with this uid was found."


class EntityScopedMixin:
    """Resolves ``{context_type}/{entity_uid}`` into ``self.entity`` (404 when it is
    absent or not visible to the caller).

    The path converters have already rejected a bad ``context_type`` or a malformed uid;
    here the entity is looked up through the visibility queryset of its context, once,
    after authentication and permission checks and before the handler parses any body.
    """

    scope_context_kwarg = "context_type"
    scope_entity_kwarg = "entity_uid"
    #: Actions that resolve the entity themselves, folded into a larger statement (the
    #: value create fetches it with the caller's role and the definition). Such an action
    #: must set ``self.entity`` through the same visibility rules, and answer the 404
    #: before anything else it could answer; ``self.entity`` stays ``None`` until then.
    self_scoped_actions: frozenset[str] = frozenset()

    entity = None
    context_type: str | None = None
    #: The uid from the path, for the self-scoped actions (the others use ``self.entity``).
    entity_uid = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.context_type = kwargs[self.scope_context_kwarg]
        self.entity_uid = kwargs[self.scope_entity_kwarg]
        if getattr(self, "action", None) in self.self_scoped_actions:
            return
        self.entity = self.resolve_entity(self.context_type, self.entity_uid)

    def entity_not_found(self) -> NotFound:
        return NotFound(ENTITY_NOT_FOUND.format(context_type=self.context_type))

    def resolve_entity(self, context_type: str, entity_uid):
        entity = entity_get(
            context_type=context_type, entity_uid=entity_uid, user=self.request.user
        )
        if entity is None:
            raise NotFound(ENTITY_NOT_FOUND.format(context_type=context_type))
        return entity
