"""django-filter pieces shared by the apps' filter sets."""

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

_BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}


class StrictBooleanField(forms.Field):
    """``true``/``false``/``1``/``0`` (case-insensitive); anything else is an error."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        lowered = str(value).strip().lower()
        if lowered not in _BOOLEAN_WORDS:
            raise forms.ValidationError("Must be one of true, false, 1, 0.", code="invalid")
        return _BOOLEAN_WORDS[lowered]


# Documented as a boolean whatever model field it filters (``revoked_at`` with ``isnull``).
@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField
