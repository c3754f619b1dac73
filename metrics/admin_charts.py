"""The admin's pictures: a chart page per entity and metric, links to it, and an
organization's stale series.

The chart reads ``metric_series`` directly (one statement; two with the previous year), and
draws with uPlot, vendored under ``metrics/static/metrics/vendor/uplot`` so the page needs no
network.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from .admin_forms import format_value
from .constants import Bucket, ContextType, StorageUnit, TimeUnit, ValueType
from .coverage import organization_freshness
from .models import MetricDefinition
from .periods import entity_today, year_before
from .selectors import entity_get
from .series import COMPARE_PREVIOUS_YEAR, metric_series, series_range_errors

CHART_URL_NAME = "admin:metrics_metricvalue_chart"
#: Days shown after a value's date when the chart opens at that date.
AT_HALF_SPAN = timedelta(days=182)
#: The bucket a chart opens with for a value of each time unit.
TIME_UNIT_DEFAULT_BUCKET = {
    TimeUnit.DAY: Bucket.DAY,
    TimeUnit.MONTH: Bucket.MONTH,
    TimeUnit.YEAR: Bucket.YEAR,
}
#: Rows of stale series an organization's page lists.
FRESHNESS_ROWS = 20


def chart_url(
    *, context_type: str, entity_uid, metric_uid: str, at: date | None = None, bucket=None
) -> str:
    """The chart page of one entity's metric, opened at ``at`` when given."""
    url = reverse(CHART_URL_NAME, args=[context_type, entity_uid, metric_uid])
    query = {}
    if bucket:
        query["bucket"] = bucket
    if at is not None:
        query["at"] = at.isoformat()
    return f"{url}?{urlencode(query)}" if query else url


def value_chart_link(value) -> str:
    """A link from a value's page to its chart, at the value's date and in its time unit."""
    url = chart_url(
        context_type=value.context_type,
        entity_uid=value.entity_uid,
        metric_uid=value.metric.uid,
        at=value.metric_date,
        bucket=TIME_UNIT_DEFAULT_BUCKET.get(value.time_unit),
    )
    return format_html('<a href="{}" class="chart-link">Chart at {}</a>', url, value.metric_date)


def entity_chart_links(context_type: str, entity_uid) -> str:
    """Links to the chart of each active metric of ``context_type`` for one entity (the
    catalogue is small: one query)."""
    definitions = MetricDefinition.objects.filter(
        context_type=context_type, is_active=True
    ).order_by("uid")
    links = format_html_join(
        " · ",
        '<a href="{}">{}</a>',
        (
            (chart_url(context_type=context_type, entity_uid=entity_uid, metric_uid=d.uid), d.uid)
            for d in definitions
        ),
    )
    return links or "—"


def organization_freshness_table(organization) -> str:
    """The organization's series over every active metric, stale first, each linking to
    its chart."""
    definitions = list(MetricDefinition.objects.filter(is_active=True).order_by("uid"))
    if not definitions:
        return "—"
    freshness = organization_freshness(organization=organization, definitions=definitions)
    rows, total = freshness.page(0, FRESHNESS_ROWS)
    body = format_html_join(
        "",
        '<tr class="{}"><td>{}</td><td>{}</td><td><a href="{}">{}</a></td><td>{}</td>'
        "<td>{}</td></tr>",
        (
            (
                "stale" if row["stale"] else "fresh",
                "stale" if row["stale"] else "fresh",
                row["entity_name"],
                chart_url(
                    context_type=row["context_type"],
                    entity_uid=row["entity_uid"],
                    metric_uid=row["metric_uid"],
                ),
                row["metric_uid"],
                row["last_date"] or "never",
                "—" if row["periods_behind"] is None else row["periods_behind"],
            )
            for row in rows
        ),
    )
    more = (
        format_html("<p>The first {} of {} series.</p>", len(rows), total)
        if total > len(rows)
        else ""
    )
    return format_html(
        '<table class="freshness"><thead><tr><th>state</th><th>entity</th><th>metric</th>'
        "<th>newest date</th><th>days behind</th></tr></thead><tbody>{}</tbody></table>{}",
        body,
        more,
    )


# --- Numbers as analysts read them ------------------------------------------------------------


def display_number(value: Decimal | None, definition: MetricDefinition) -> float | None:
    """A stored value in the unit it is read in (cents as currency units), for the chart."""
    if value is None:
        return None
    if definition.storage_unit == StorageUnit.CENTS:
        value = value / 100
    return float(value)


def number_format(definition: MetricDefinition) -> dict:
    """How the chart's axis and legend write a number of ``definition``."""
    if definition.storage_unit == StorageUnit.CENTS or definition.value_type == ValueType.CURRENCY:
        return {"min": 2, "max": 2, "suffix": ""}
    if definition.value_type == ValueType.PERCENTAGE:
        return {"min": 0, "max": 2, "suffix": "%"}
    if definition.value_type == ValueType.DAYS:
        return {"min": 0, "max": 1, "suffix": " days"}
    if definition.value_type == ValueType.COUNT:
        return {"min": 0, "max": 0, "suffix": ""}
    return {"min": 0, "max": 4, "suffix": ""}


# --- The chart page -----------------------------------------------------------------------


class ChartQueryForm(forms.Form):
    bucket = forms.ChoiceField(choices=Bucket.choices, required=False)
    start = forms.DateField(required=False, label="from")
    end = forms.DateField(required=False, label="to")
    previous_year = forms.BooleanField(required=False, label="previous year")
    at = forms.DateField(required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            self.add_error("start", f"from ({start}) is after to ({end}).")
        return cleaned


def chart_range(data: dict, today: date) -> tuple[date, date]:
    """The dates a chart shows: as asked; else a year ending half a year after ``at`` (or
    today, when that is sooner); else the year to today."""
    at = data.get("at")
    end = data.get("end") or (min(at + AT_HALF_SPAN, max(at, today)) if at else today)
    start = data.get("start") or year_before(end)
    return start, end


def chart_view(model_admin, request, context_type: str, entity_uid: UUID, metric_uid: str):
    """One entity's metric as a line chart and a table of its buckets."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if context_type not in ContextType.values:
        raise Http404("Unknown context type.")
    definition = MetricDefinition.objects.filter(uid=metric_uid, context_type=context_type).first()
    if definition is None:
        raise Http404(f"No {context_type} metric {metric_uid}.")
    entity = entity_get(context_type=context_type, entity_uid=entity_uid)
    if entity is None:
        raise Http404(f"No {context_type} with uid {entity_uid}.")

    form = ChartQueryForm(request.GET)
    form.is_valid()
    data = form.cleaned_data if form.is_valid() else {}
    bucket = data.get("bucket") or Bucket.DAY
    start, end = chart_range(data, entity_today(entity))
    if form.is_valid() and (errors := series_range_errors(start, end, bucket)):
        for field, messages in errors.items():
            form.add_error(None if field == "bucket" else "start", messages)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"{definition.name} — {entity}",
        "definition": definition,
        "entity": entity,
        "context_type": context_type,
        "form": form,
        "buckets": Bucket.choices,
        "bucket": bucket,
        "start": start,
        "end": end,
        "previous_year": bool(data.get("previous_year")),
        "at": data.get("at"),
        "values_url": reverse("admin:metrics_metricvalue_changelist")
        + "?"
        + urlencode({"entity_uid": entity.uid, "metric__id__exact": definition.pk}),
    }
    if form.errors:
        return TemplateResponse(
            request, "admin/metrics/metricvalue/chart.html", context, status=400
        )
    series = metric_series(
        context_type=context_type,
        entity=entity,
        definitions=[definition],
        bucket=bucket,
        start=start,
        end=end,
        compare=COMPARE_PREVIOUS_YEAR if context["previous_year"] else None,
    )["series"][0]
    points = series["points"]
    at_bucket = None
    rows = []
    for point in points:
        holds_at = context["at"] is not None and point["start"] <= context["at"] <= point["end"]
        if holds_at:
            at_bucket = point["start"]
        rows.append(
            {
                "start": point["start"],
                "end": point["end"],
                "value": format_value(point["value"], definition),
                "compare": format_value(point.get("compare_value"), definition),
                "count": point["count"],
                "expected": point["expected"],
                "coverage": point["coverage"],
                "thin": point["count"] > 0 and point["coverage"] < 1,
                "gap": point["value"] is None,
                "at": holds_at,
            }
        )
    context["rows"] = rows
    context["chart"] = {
        "x": [_epoch(point["start"]) for point in points],
        "y": [display_number(point["value"], definition) for point in points],
        "compare": (
            [display_number(point["compare_value"], definition) for point in points]
            if context["previous_year"]
            else None
        ),
        "thin": [row["thin"] for row in rows],
        "at": _epoch(at_bucket) if at_bucket else None,
        "format": number_format(definition),
        "label": definition.uid,
        "bucket": bucket,
    }
    return TemplateResponse(request, "admin/metrics/metricvalue/chart.html", context)


def _epoch(day: date) -> int:
    """A date as the UTC midnight uPlot's time axis counts in (seconds)."""
    return (day - date(1970, 1, 1)).days * 86400
