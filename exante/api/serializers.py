"""Serializer building blocks shared by the apps."""

from rest_framework import serializers

from exante.fields import StrictFieldsMixin


class EmptyBodySerializer(StrictFieldsMixin, serializers.Serializer):
    """The body of an action that takes none: nothing, or ``{}``. Read all the same, so
    that what any other endpoint refuses is refused here too."""
