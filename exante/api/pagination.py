"""Page-number pagination with strict bounds and the ``_meta`` block."""

import math

from django.db.models import Count, Window
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response


def parse_positive_int(raw: str, name: str, maximum: int | None = None) -> int:
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise ValidationError({name: [f"{name} must be an integer."]}) from None
    if number < 1 or (maximum is not None and number > maximum):
        bound = f"between 1 and {maximum}" if maximum is not None else "at least 1"
        raise ValidationError({name: [f"{name} must be {bound}."]})
    return number


#: The largest page number accepted: ``_meta.page`` echoes it, and a JSON integer past
#: 64 bits cannot be written (``page=34057853588838445056`` must be a 400, not a 500).
MAX_PAGE = 2_147_483_647


class EnvelopePagination(BasePagination):
    """``?page=`` (≥ 1) and ``?per_page=`` (1–``max_per_page``); past the end is an empty
    page, never a 404. Views may override ``default_per_page`` and ``max_per_page``."""

    default_per_page = 25
    max_per_page = 100

    def _bounds(self, view) -> tuple[int, int]:
        return (
            getattr(view, "default_per_page", self.default_per_page),
            getattr(view, "max_per_page", self.max_per_page),
        )

    def paginate_queryset(self, queryset, request, view=None):
        default, maximum = self._bounds(view)
        params = request.query_params
        self.page = parse_positive_int(params["page"], "page", MAX_PAGE) if "page" in params else 1
        self.per_page = (
            parse_positive_int(params["per_page"], "per_page", maximum)
            if "per_page" in params
            else default
        )
        rows, self.total_items = self.fetch(queryset, (self.page - 1) * self.per_page)
        return rows

    def fetch(self, queryset, offset: int) -> tuple[list, int]:
        """One page of rows from ``offset`` and the total: a COUNT, then the page."""
        total = self.count(queryset)
        if offset >= total:
            return [], total
        return list(queryset[offset : offset + self.per_page]), total

    def count(self, queryset) -> int:
        if isinstance(queryset, list):
            return len(queryset)
        return queryset.count()

    def get_paginated_response(self, data):
        return Response({"items": data, "_meta": self.meta()})

    def meta(self) -> dict:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "total_pages": math.ceil(self.total_items / self.per_page),
            "total_items": self.total_items,
        }

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["items", "_meta"],
            "properties": {
                "items": schema,
                "_meta": {
                    "type": "object",
                    "required": ["page", "per_page", "total_pages", "total_items"],
                    "properties": {
                        # Examples, so a list endpoint's item examples can be shown
                        # inside a whole page.
                        "page": {"type": "integer", "minimum": 1, "example": 1},
                        "per_page": {"type": "integer", "minimum": 1, "example": 25},
                        "total_pages": {"type": "integer", "minimum": 0, "example": 1},
                        "total_items": {"type": "integer", "minimum": 0, "example": 2},
                    },
                },
            },
        }

    def get_schema_operation_parameters(self, view):
        default, maximum = self._bounds(view)
        return [
            {
                "name": "page",
                "in": "query",
                "required": False,
                "description": "Page number, from 1. A page past the end is empty.",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
            },
            {
                "name": "per_page",
                "in": "query",
                "required": False,
                "description": f"Items per page, 1 to {maximum}.",
                "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
            },
        ]


class WindowCountPagination(EnvelopePagination):
    """``EnvelopePagination`` whose page query also counts: ``COUNT(*) OVER ()`` rides
    along with the rows, so a page costs one query instead of a COUNT and a SELECT.

    For ``.values()`` querysets. Only a page past the end (no row to carry the total) runs
    a separate COUNT.
    """

    total_column = "_window_total"

    def fetch(self, queryset, offset: int) -> tuple[list, int]:
        counted = queryset.annotate(**{self.total_column: Window(Count("*"))})
        rows = list(counted[offset : offset + self.per_page])
        if not rows:
            return [], 0 if offset == 0 else queryset.count()
        total = rows[0][self.total_column]
        for row in rows:
            del row[self.total_column]
        return rows, total


class PageSourcePagination(EnvelopePagination):
    """``EnvelopePagination`` over an object with ``page(offset, limit) -> (rows, total)``:
    for reads written as one SQL statement that sorts and counts itself (``COUNT(*) OVER
    ()``), so a page costs one query."""

    def fetch(self, source, offset: int) -> tuple[list, int]:
        return source.page(offset, self.per_page)
