"""Nested URL scopes resolved once per request, after authentication (PostHog's scoped
viewsets, Sentry's ``convert_args``).

A view mounted under ``{context_type}/{entity_uid}`` mixes in ``EntityScopedMixin`` and
then works with ``self.entity`` and ``self.context_type``; it never reads the URL kwargs
itself, so no action can forget the visibility check.
"""

from rest_framework.exceptions import NotFound

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

    entity = None
    context_type: str | None = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.context_type = kwargs[self.scope_context_kwarg]
        self.entity = self.resolve_entity(self.context_type, kwargs[self.scope_entity_kwarg])

    def resolve_entity(self, context_type: str, entity_uid):
        # Imported here: exante.api is plumbing loaded before the apps' models are ready.
        from metrics.selectors import entity_get

        entity = entity_get(
            context_type=context_type, entity_uid=entity_uid, user=self.request.user
        )
        if entity is None:
            raise NotFound(ENTITY_NOT_FOUND.format(context_type=context_type))
        return entity
