"""django-filter pieces shared by the apps."""

import django_filters
from django import forms

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


class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField
