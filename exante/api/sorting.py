"""``?sort=field``, ``?sort=+field``, ``?sort=-field`` over a whitelist."""

from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend


def parse_sort(raw: str | None, allowed: dict[str, str], default: str) -> tuple[str, bool]:
    """Return (model field, descending). ``+`` that arrived as a space counts as ``+``."""
    # ``sort=`` (present but empty) is an unknown field like any other, not the default:
    # the schema documents an enum, and every other typed parameter rejects "" too.
    text = default if raw is None else raw
    descending = text.startswith("-")
    name = text[1:] if text[:1] in "+- " else text
    name = name.strip()
    if name not in allowed:
        choices = ", ".join(sorted(allowed))
        raise ValidationError({"sort": [f"Unknown sort field {name!r}; allowed: {choices}."]})
    return allowed[name], descending


class SortFilter(BaseFilterBackend):
    """Orders by one whitelisted field, then by the view's stable tie-breaker keys.

    Views declare ``sort_fields`` (API name → model field), ``default_sort`` and
    ``sort_tiebreak`` (model fields giving a total order so pages never overlap).
    """

    def filter_queryset(self, request, queryset, view):
        allowed = getattr(view, "sort_fields", None)
        if not allowed:
            return queryset
        field, descending = parse_sort(request.query_params.get("sort"), allowed, view.default_sort)
        order = [f"-{field}" if descending else field]
        order += [
            key for key in getattr(view, "sort_tiebreak", ("pk",)) if key.lstrip("-") != field
        ]
        return queryset.order_by(*order)

    def get_schema_operation_parameters(self, view):
        allowed = getattr(view, "sort_fields", None)
        if not allowed:
            return []
        names = sorted(allowed)
        enum = [prefix + name for name in names for prefix in ("", "+", "-")]
        return [
            {
                "name": "sort",
                "in": "query",
                "required": False,
                "description": (
                    "One field, ascending (`field` or `+field`) or descending (`-field`). "
                    f"Default `{view.default_sort}`; ties are broken by a stable key. "
                    "An unknown field is a 400 listing the allowed ones."
                ),
                "schema": {"type": "string", "enum": enum, "default": view.default_sort},
            }
        ]
