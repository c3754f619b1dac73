"""Admin for analysts: browse definitions and values, correct a value by hand.

``MetricValue`` will hold tens of millions of rows, so its changelist never counts the
table, never searches with ``LIKE``, never sorts the whole table, loads no JSON it does not
show, and resolves entity names with one query per context type per page. Every write goes
through ``metrics.services``, so the admin enforces exactly the API's rules.
"""

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from uuid import UUID

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from rangefilter.filters import DateRangeFilter

from entities.models import Organization, Party, User
from exante.admin_forms import DomainErrorAdminMixin
from exante.admin_paginator import LargeTablePaginator

from .admin_charts import chart_url, chart_view, value_chart_link
from .admin_forms import MetricDefinitionForm, MetricValueForm, format_value, plain_number
from .changes import change_context
from .constants import CHANGE_REASON_MAX_LENGTH, ChangeSource, ContextType
from .exceptions import MetricInUse
from .models import MetricDefinition, MetricValue, MetricValueHistory
from .services import (
    DEFINITION_IMMUTABLE_FIELDS,
    metric_definition_delete,
    metric_definition_update,
    metric_value_delete,
)

admin.site.site_header = "Exante Metrics admin"
admin.site.site_title = "Exante Metrics"
admin.site.index_title = "Metrics and entities"


# --- Display helpers ------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityLabel:
    name: str
    url: str | None


_MISSING = EntityLabel("(missing entity)", None)
_ENTITY_CHANGE_URL = {
    ContextType.ORGANIZATION: "admin:entities_organization_change",
    ContextType.PARTY: "admin:entities_party_change",
    ContextType.USER: "admin:entities_user_change",
}


def entity_labels(refs: Iterable[tuple[str, UUID]]) -> dict[tuple[str, UUID], EntityLabel]:
    """Names (and admin links) of many entities: one query per context type present."""
    wanted: dict[str, set[UUID]] = defaultdict(set)
    for context_type, uid in refs:
        wanted[context_type].add(uid)
    labels: dict[tuple[str, UUID], EntityLabel] = {}
    for context_type, uids in wanted.items():
        if context_type == ContextType.ORGANIZATION:
            rows = Organization.objects.filter(uid__in=uids).values_list("uid", "pk", "name")
        elif context_type == ContextType.PARTY:
            rows = (
                (uid, pk, f"{name} ({org})")
                for uid, pk, name, org in Party.objects.filter(uid__in=uids).values_list(
                    "uid", "pk", "name", "organization__name"
                )
            )
        elif context_type == ContextType.USER:
            rows = User.objects.filter(uid__in=uids).values_list("uid", "pk", "email")
        else:
            continue
        url_name = _ENTITY_CHANGE_URL[context_type]
        for uid, pk, name in rows:
            labels[(context_type, uid)] = EntityLabel(name, reverse(url_name, args=[pk]))
    return labels


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# --- CSV export -----------------------------------------------------------------------------

CSV_COLUMNS = [
    "uid",
    "metric_uid",
    "context_type",
    "entity_uid",
    "entity_name",
    "time_unit",
    "metric_date",
    "value",
    "display_value",
    "timezone",
    "updated_at",
]


class _Echo:
    """A file-like object whose ``write`` hands the line back, for streaming csv.writer."""

    def write(self, value: str) -> str:
        return value


def _csv_text(text: str) -> str:
    # A cell starting like a formula would run in a spreadsheet; names are free text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def metric_value_csv_rows(queryset, chunk_size: int = 500) -> Iterator[str]:
    """CSV lines for ``queryset``, read with a server-side cursor (``.iterator()``) and
    entity names resolved per chunk, so memory does not grow with the export."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    rows = queryset.select_related("metric").defer("metadata").iterator(chunk_size=chunk_size)
    for chunk in _chunks(rows, chunk_size):
        labels = entity_labels((row.context_type, row.entity_uid) for row in chunk)
        for row in chunk:
            label = labels.get((row.context_type, row.entity_uid), _MISSING)
            yield writer.writerow(
                [
                    row.uid,
                    row.metric.uid,
                    row.context_type,
                    row.entity_uid,
                    _csv_text(label.name),
                    row.time_unit,
                    row.metric_date.isoformat(),
                    plain_number(row.value),
                    format_value(row.value, row.metric),
                    row.timezone,
                    row.updated_at.isoformat(),
                ]
            )


def metric_value_csv_response(queryset) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return StreamingHttpResponse(
        metric_value_csv_rows(queryset),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="metric-values-{stamp}.csv"'},
    )


# --- Metric values --------------------------------------------------------------------------


class EntityFilter(admin.SimpleListFilter):
    """Filter by one entity (``?entity_uid=``): lists the organizations while there are
    few, and always shows the selected entity by name."""

    title = "organization or entity"
    parameter_name = "entity_uid"
    #: Above this many organizations the list would be noise: start from the
    #: organization's page ("values" link) or search by its uid instead.
    max_listed = 50

    def lookups(self, request, model_admin):
        choices = []
        organizations = list(
            Organization.objects.order_by("name", "pk").values_list("uid", "name")[
                : self.max_listed + 1
            ]
        )
        if len(organizations) <= self.max_listed:
            choices = [(str(uid), name) for uid, name in organizations]
        selected = self._selected_uid()
        if selected is not None and str(selected) not in {key for key, _ in choices}:
            found = entity_labels((context_type, selected) for context_type in ContextType.values)
            label = next(iter(found.values()), _MISSING)
            choices.append((str(selected), label.name))
        return choices

    def _selected_uid(self) -> UUID | None:
        try:
            return UUID(self.value()) if self.value() else None
        except ValueError:
            return None

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        selected = self._selected_uid()
        if selected is None:
            raise IncorrectLookupParameters("entity_uid must be a UUID.")
        return queryset.filter(entity_uid=selected)


class MetricValueChangeList(ChangeList):
    """Defers the JSON column, keeps sorting to cheap cases, and resolves the page's
    entity names in one query per context type."""

    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer("metadata")

    #: One entity's values in the unique index's order (read backwards: newest date first
    #: within each metric and time unit), so the page is an index range scan. Ordering by
    #: ``-pk`` instead makes PostgreSQL walk the primary key backwards past every other
    #: entity's rows until it finds this one's.
    ENTITY_ORDERING = ["-entity_uid", "-metric_id", "-time_unit", "-metric_date"]

    def get_ordering(self, request, queryset):
        # Sorting the whole table by a column is a full sort of tens of millions of rows;
        # it is offered (and honoured) only within one entity's values.
        if not self.params.get(EntityFilter.parameter_name):
            self.params.pop(ORDER_VAR, None)
        elif ORDER_VAR not in self.params:
            return list(self.ENTITY_ORDERING)
        return super().get_ordering(request, queryset)

    def get_results(self, request):
        super().get_results(request)
        rows = list(self.result_list)
        labels = entity_labels((row.context_type, row.entity_uid) for row in rows)
        for row in rows:
            row.entity_label = labels.get((row.context_type, row.entity_uid), _MISSING)
        self.result_list = rows


IMMUTABLE_VALUE_FIELDS = ("metric", "context_type", "entity_uid", "time_unit", "metric_date")
#: Shown on a stored value, never edited.
_PROVENANCE_FIELDS = ("metadata_pretty", "batch_id", "uid", "version", "created_at", "updated_at")


@admin.register(MetricValue)
class MetricValueAdmin(DomainErrorAdminMixin, admin.ModelAdmin):
    form = MetricValueForm
    # Sized for a laptop (1280–1400 px with both sidebars open): the context type shows in
    # the entity's name and the filters, dates are ISO, values right-aligned
    # (metrics/static/metrics/admin/changelist.css).
    list_display = ("metric_uid", "entity", "unit", "date", "display_value", "updated")
    list_select_related = ("metric",)
    list_filter = (
        EntityFilter,
        "metric",
        "context_type",
        "time_unit",
        ("metric_date", DateRangeFilter),
    )
    # Declared so the search box shows; get_search_results decides what a term means.
    search_fields = ("=entity_uid", "=metric__uid")
    search_help_text = (
        "Exact match only: an entity uid, or a metric uid such as total_ar. "
        "Several terms narrow the search."
    )
    autocomplete_fields = ("metric",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = LargeTablePaginator
    list_per_page = 100
    actions = ("export_csv",)

    class Media:
        css = {"all": ("metrics/admin/changelist.css",)}

    # --- changelist -----------------------------------------------------------------------

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("metric")

    def get_changelist(self, request, **kwargs):
        return MetricValueChangeList

    def get_sortable_by(self, request):
        if request.GET.get(EntityFilter.parameter_name):
            return ("date", "updated")
        return ()

    def get_search_results(self, request, queryset, search_term):
        # Equality on indexed columns only: a LIKE over the values table would read it all.
        for term in search_term.split():
            try:
                uid = UUID(term)
            except ValueError:
                queryset = queryset.filter(metric__uid=term)
                continue
            queryset = queryset.filter(Q(entity_uid=uid) | Q(uid=uid))
            self._point_to_deleted_history(request, uid)
        return queryset, False

    def _point_to_deleted_history(self, request, uid: UUID) -> None:
        """A uid of a value that no longer exists: say so, and link to its history."""
        if MetricValue.objects.filter(uid=uid).exists():
            return
        if not MetricValueHistory.objects.filter(value_uid=uid).exists():
            return
        url = reverse("admin:metrics_metricvalue_value_history", args=[uid])
        self.message_user(
            request,
            format_html('Value {} was deleted. <a href="{}">See its history</a>.', uid, url),
            messages.WARNING,
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        # The bulk delete confirmation lists every row; values are deleted one by one here.
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="metric", ordering="metric__uid")
    def metric_uid(self, obj: MetricValue) -> str:
        # A long uid may wrap after its underscores (party_avg_days_to_pay).
        first, *rest = obj.metric.uid.split("_")
        label = format_html("{}", first)
        for part in rest:
            label = format_html("{}_<wbr>{}", label, part)
        return label

    @admin.display(description="entity")
    def entity(self, obj: MetricValue):
        label = getattr(obj, "entity_label", None)
        if label is None:  # outside the changelist (change page): one lookup
            label = entity_labels([(obj.context_type, obj.entity_uid)]).get(
                (obj.context_type, obj.entity_uid), _MISSING
            )
        if label.url is None:
            return format_html('<span title="{}">{}</span>', obj.entity_uid, label.name)
        return format_html('<a href="{}" title="{}">{}</a>', label.url, obj.entity_uid, label.name)

    @admin.display(description="unit", ordering="time_unit")
    def unit(self, obj: MetricValue) -> str:
        return obj.get_time_unit_display()

    @admin.display(description="date", ordering="metric_date")
    def date(self, obj: MetricValue) -> str:
        return obj.metric_date.isoformat()

    @admin.display(description="value")
    def display_value(self, obj: MetricValue) -> str:
        return format_value(obj.value, obj.metric)

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj: MetricValue) -> str:
        moment = timezone.localtime(obj.updated_at)
        return format_html(
            "<span>{}</span> <span>{}</span>", moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M")
        )

    @admin.display(description="shown as")
    def value_shown_as(self, obj: MetricValue) -> str:
        return format_value(obj.value, obj.metric)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: MetricValue):
        text = json.dumps(obj.metadata, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre style="margin:0">{}</pre>', text)

    @admin.action(description="Export selected values as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        return metric_value_csv_response(queryset)

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="metrics_metricvalue_export",
            ),
            path(
                "chart/<str:context_type>/<uuid:entity_uid>/<str:metric_uid>/",
                self.admin_site.admin_view(self.chart_view),
                name="metrics_metricvalue_chart",
            ),
            path(
                "value-history/<uuid:value_uid>/",
                self.admin_site.admin_view(self.value_history_view),
                name="metrics_metricvalue_value_history",
            ),
            *super().get_urls(),
        ]

    def chart_view(self, request, context_type: str, entity_uid: UUID, metric_uid: str):
        return chart_view(self, request, context_type, entity_uid, metric_uid)

    def changelist_view(self, request, extra_context=None):
        # Filtered to one entity and one metric, the list links to that series' chart.
        extra_context = {**(extra_context or {}), "chart_url": self._chart_url_of(request)}
        return super().changelist_view(request, extra_context)

    def _chart_url_of(self, request) -> str | None:
        try:
            entity_uid = UUID(request.GET.get(EntityFilter.parameter_name, ""))
            metric_id = int(request.GET.get("metric__id__exact", ""))
        except ValueError:
            return None
        definition = MetricDefinition.objects.filter(pk=metric_id).first()
        if definition is None:
            return None
        return chart_url(
            context_type=definition.context_type, entity_uid=entity_uid, metric_uid=definition.uid
        )

    @admin.display(description="chart")
    def chart(self, obj: MetricValue):
        return value_chart_link(obj)

    def export_view(self, request):
        """The current changelist (same filters and search) as a streamed CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:metrics_metricvalue_changelist") + "?e=1")
        return metric_value_csv_response(changelist.queryset)

    def value_history_view(self, request, value_uid: UUID):
        """Every version of one value, newest first, also after it was deleted."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        versions = list(
            MetricValueHistory.objects.filter(value_uid=value_uid)
            .select_related("metric")
            .order_by("-version")[:VALUE_HISTORY_PAGE_ROWS]
        )
        if not versions:
            raise Http404("No value with this uid ever existed.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"History of value {value_uid}",
            "value_uid": value_uid,
            "newest": versions[0],
            "table": history_table(versions),
            "exists": MetricValue.objects.filter(uid=value_uid).exists(),
        }
        return TemplateResponse(request, "admin/metrics/metricvalue/value_history.html", context)

    @admin.display(description="history (newest first)")
    def history(self, obj: MetricValue):
        versions = list(
            MetricValueHistory.objects.filter(value_uid=obj.uid).order_by("-version")[
                : VALUE_HISTORY_INLINE_ROWS + 1
            ]
        )
        table = history_table(versions[:VALUE_HISTORY_INLINE_ROWS], obj.metric)
        if len(versions) > VALUE_HISTORY_INLINE_ROWS:
            url = reverse("admin:metrics_metricvalue_value_history", args=[obj.uid])
            table = format_html('{}<p><a href="{}">Every version</a></p>', table, url)
        return table

    # --- writes: attributed to the admin user, with the form's reason -----------------------

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with _admin_change(request):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        with _admin_change(request):
            return super().delete_view(request, object_id, extra_context)

    # --- add / change ---------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (
                    None,
                    {
                        "fields": (
                            "metric",
                            "context_type",
                            "entity_uid",
                            "time_unit",
                            "metric_date",
                            "value",
                            "timezone",
                        )
                    },
                )
            ]
        return [
            (None, {"fields": ("metric", "context_type", "entity_uid", "entity")}),
            ("Period", {"fields": ("time_unit", "metric_date")}),
            ("Value", {"fields": ("value", "value_shown_as", "timezone", "reason")}),
            ("Provenance", {"fields": _PROVENANCE_FIELDS}),
            ("History", {"fields": ("history", "chart")}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            *IMMUTABLE_VALUE_FIELDS,
            "entity",
            "value_shown_as",
            *_PROVENANCE_FIELDS,
            "history",
            "chart",
        )

    def save_model(self, request, obj, form, change):
        """Nothing left to do: MetricValueForm wrote through the services while validating."""

    def delete_model(self, request, obj):
        metric_value_delete(instance=obj)


#: Versions the change page shows; the value's history page shows up to the larger number.
VALUE_HISTORY_INLINE_ROWS = 20
VALUE_HISTORY_PAGE_ROWS = 1000


def _admin_change(request):
    """Attribute the writes of an admin page to its user and the form's reason (an
    over-long reason is the form's error to report, and nothing is written then)."""
    reason = request.POST.get("reason", "").strip() if request.method == "POST" else ""
    if len(reason) > CHANGE_REASON_MAX_LENGTH:
        reason = ""
    return change_context(source=ChangeSource.ADMIN, user=request.user, reason=reason or None)


def history_table(versions: list, metric: MetricDefinition | None = None):
    """Versions of a value as a read-only HTML table."""
    if not versions:
        return "—"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td></tr>",
        (
            (
                v.version,
                v.operation,
                format_value(v.value, metric or v.metric),
                v.timezone,
                timezone.localtime(v.recorded_at).strftime("%Y-%m-%d %H:%M:%S"),
                v.source,
                v.recorded_by_uid or "—",
                v.reason or "",
            )
            for v in versions
        ),
    )
    return format_html(
        '<table class="value-history"><thead><tr><th>version</th><th>operation</th>'
        "<th>value</th><th>timezone</th><th>recorded</th><th>source</th><th>by (user uid)</th>"
        "<th>reason</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


# --- Metric definitions ---------------------------------------------------------------------

#: Above this many values the change page says "more than" instead of counting on.
VALUES_COUNT_CAP = 1_000_000


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(DomainErrorAdminMixin, admin.ModelAdmin):
    form = MetricDefinitionForm
    list_display = (
        "uid",
        "name",
        "context_type",
        "value_type",
        "storage_unit",
        "is_snapshot",
        "period_definition",
        "aggregation",
        "is_active",
        "updated_at",
    )
    list_filter = ("is_active", "context_type", "value_type", "period_definition", "aggregation")
    search_fields = ("uid", "name")
    ordering = ("uid",)
    actions = ("deactivate", "activate")

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ("uid", "name", "context_type", "is_active")}),
            (
                "Meaning (cannot change once created)",
                {
                    "fields": (
                        "value_type",
                        "storage_unit",
                        "is_snapshot",
                        "period_definition",
                        "aggregation",
                    )
                },
            ),
            ("Documentation", {"fields": ("description", "formula")}),
        ]
        if obj is not None:
            fieldsets.append(("Usage", {"fields": ("values_count", "created_at", "updated_at")}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (*DEFINITION_IMMUTABLE_FIELDS, "values_count", "created_at", "updated_at")

    @admin.display(description="values stored")
    def values_count(self, obj: MetricDefinition) -> str:
        # Counted here, on one definition's page, never in the list; capped so a metric
        # with a huge history still answers quickly.
        counted = MetricValue.objects.filter(metric=obj).values("pk")[: VALUES_COUNT_CAP + 1]
        number = counted.count()
        if number > VALUES_COUNT_CAP:
            return f"more than {VALUES_COUNT_CAP:,}"
        return f"{number:,}"

    @admin.action(description="Deactivate selected metrics (they take no new values)")
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, active=False)

    @admin.action(description="Reactivate selected metrics")
    def activate(self, request, queryset):
        self._set_active(request, queryset, active=True)

    def _set_active(self, request, queryset, *, active: bool) -> None:
        changed = 0
        for definition in queryset.filter(is_active=not active):
            metric_definition_update(definition=definition, is_active=active)
            changed += 1
        verb = "reactivated" if active else "deactivated"
        self.message_user(request, f"{changed} metric(s) {verb}.", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        """Nothing left to do: MetricDefinitionForm wrote through the services."""

    def get_deleted_objects(self, objs, request):
        # The default collector would load every protected value to list it; with millions
        # of values that page would never render. One EXISTS per definition instead.
        pks = [obj.pk for obj in objs]
        in_use = list(
            MetricDefinition.objects.filter(pk__in=pks)
            .filter(Exists(MetricValue.objects.filter(metric=OuterRef("pk"))))
            .values_list("uid", flat=True)
        )
        if in_use:
            protected = [
                f"Metric {uid} has stored values: deactivate it instead of deleting it."
                for uid in in_use
            ]
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)

    def delete_model(self, request, obj):
        metric_definition_delete(definition=obj)

    def delete_queryset(self, request, queryset):
        try:
            with transaction.atomic():
                for definition in queryset:
                    metric_definition_delete(definition=definition)
        except MetricInUse:
            self.message_user(request, MetricInUse.default_detail, messages.ERROR)
