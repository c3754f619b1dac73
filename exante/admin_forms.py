"""Admin forms whose write is a service call.

The admin must enforce exactly the API's rules, so these forms do not validate the model
themselves: they call the app's service and turn its ``ValidationError`` (a dict keyed by
field) and its conflicts (``DomainError`` subclasses such as ``DuplicateValue``) into form
errors.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.http import HttpResponseRedirect

from exante.errors import DomainError


class ServiceModelForm(forms.ModelForm):
    """A ModelForm whose write is one service call, made while the form validates.

    Why during validation: the admin re-renders a form only for errors found by
    ``is_valid()``, and some errors are only known when the row is written (the unique
    constraint decides a duplicate, even against a concurrent insert). The admin's
    add/change view runs in one transaction, so nothing is half-written; ``save()`` then
    returns the instance the service saved and the ModelAdmin's ``save_model`` does nothing.
    """

    #: Service error keys that name a different form field (``None``: a non-field error).
    error_field_aliases: dict[str, str | None] = {}

    def apply(self, cleaned_data: dict[str, Any]) -> models.Model:
        """Call the service with the cleaned data; return the saved instance."""
        raise NotImplementedError

    def clean(self):
        cleaned_data = super().clean()
        if self.errors:  # a field is already invalid: the service is not called
            return cleaned_data
        try:
            self.instance = self.apply(cleaned_data)
        except ValidationError as exc:
            self._add_service_errors(
                exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
            )
        except DomainError as exc:
            self._add_service_errors(exc.errors or {None: [str(exc.detail)]}, suffix=exc.data)
        return cleaned_data

    def _add_service_errors(self, errors: dict, suffix: Any = None) -> None:
        for key, found in errors.items():
            messages = [str(m) for m in (found if isinstance(found, list | tuple) else [found])]
            if isinstance(suffix, dict) and suffix.get("uid"):
                messages = [f"{m} (existing uid: {suffix['uid']})" for m in messages]
            field = self.error_field_aliases.get(key, key)
            if key in (None, NON_FIELD_ERRORS):
                field = None
            if field is not None and field not in self.fields:
                # e.g. an error on a field that is read-only on this page
                messages = [f"{key}: {m}" for m in messages]
                field = None
            self.add_error(field, messages)

    def _post_clean(self):
        # ModelForm would copy the data onto the instance and run model validation here;
        # the service already validated (and saved) the whole object in clean().
        pass

    def save(self, commit: bool = True):
        if self.errors:
            raise ValueError("The form has errors; nothing was saved.")
        return self.instance

    def save_m2m(self) -> None:
        """Nothing to do: these models have no many-to-many fields."""


class DomainErrorAdminMixin:
    """For ModelAdmins: a ``DomainError`` raised while saving or deleting, after the forms
    validated (an inline's service call, or a race another request won), rolls the whole
    change back and comes back as an error message instead of a 500."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            return self._domain_error_response(request, exc)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:
            return self._domain_error_response(request, exc)

    def _domain_error_response(self, request, exc: DomainError):
        self.message_user(request, f"Nothing was saved: {exc.detail}", messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())
