"""Serializer fields shared by the apps: strict JSON types, unknown fields refused."""

from rest_framework import serializers


class StrictFieldsMixin:
    """Unknown body fields are a 400 naming them , not silently dropped."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true``/``false`` only; DRF's field would also take ``"yes"`` or ``1``."""

    default_error_messages = {"invalid": "Must be a JSON boolean (true or false)."}

    def to_internal_value(self, data):
        if data is True or data is False:
            return data
        self.fail("invalid")


class StrictCharField(serializers.CharField):
    """A JSON string only; DRF's field would turn ``123`` into ``"123"``."""

    default_error_messages = {"not_a_string": "Must be a JSON string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)
