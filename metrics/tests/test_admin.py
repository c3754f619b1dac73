"""The analysts' admin for metric definitions and values: pages, permissions, query counts,
edits through the services, filters/search, CSV export and the large-table paginator."""

import csv
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import logged_in
from entities.models import Organization, Party
from exante.admin_paginator import LargeTablePaginator
from metrics.admin import format_value
from metrics.models import MetricDefinition, MetricValue, MetricValueHistory

MARCH = date(2025, 3, 1)


# --- fixtures -------------------------------------------------------------------------------


def make_value(definition, entity, metric_date, value, time_unit="day", context_type=None):
    return MetricValue.objects.create(
        metric=definition,
        context_type=context_type or definition.context_type,
        entity_uid=entity.uid,
        time_unit=time_unit,
        metric_date=metric_date,
        value=Decimal(value),
        timezone="UTC",
        metadata={"source": "test", "note": "<b>bold</b>"},
    )


@pytest.fixture
def march_value(total_ar, organization):
    return make_value(total_ar, organization, MARCH, 1234567, time_unit="month")


def url(name: str, *args) -> str:
    return reverse(f"admin:metrics_{name}", args=args)


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


# --- pages and permissions ------------------------------------------------------------------

PAGES = ["changelist", "add", "change", "delete"]


def page_url(model: str, page: str, obj) -> str:
    if page in ("change", "delete"):
        return url(f"{model}_{page}", obj.pk)
    return url(f"{model}_{page}")


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("model", ["metricvalue", "metricdefinition"])
def test_superuser_opens_every_page(superuser_client, march_value, model, page):
    obj = march_value if model == "metricvalue" else march_value.metric
    response = superuser_client.get(page_url(model, page, obj))
    assert response.status_code == 200


ANALYST_STATUS = {"changelist": 200, "add": 200, "change": 200, "delete": 403}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("model", ["metricvalue", "metricdefinition"])
def test_analyst_may_view_add_and_change_but_not_delete(analyst_client, march_value, model, page):
    obj = march_value if model == "metricvalue" else march_value.metric
    response = analyst_client.get(page_url(model, page, obj))
    assert response.status_code == ANALYST_STATUS[page]


def test_analyst_cannot_delete_a_value_by_post(analyst_client, march_value):
    response = analyst_client.post(url("metricvalue_delete", march_value.pk), {"post": "yes"})
    assert response.status_code == 403
    assert MetricValue.objects.filter(pk=march_value.pk).exists()


def test_staff_without_the_group_sees_no_metrics_admin(make_user, march_value):
    client = logged_in(make_user("plainstaff@exante.test", is_staff=True))
    assert client.get(url("metricvalue_changelist")).status_code == 403
    assert client.get(url("metricvalue_change", march_value.pk)).status_code == 403


def test_analyst_group_is_created_by_the_migration_with_exactly_its_permissions(db):
    group = Group.objects.get(name="Analyst")
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert codenames == {
        "view_organization",
        "view_party",
        "view_user",
        "view_membership",
        "view_metricdefinition",
        "add_metricdefinition",
        "change_metricdefinition",
        "view_metricvalue",
        "add_metricvalue",
        "change_metricvalue",
    }


# --- value changelist -----------------------------------------------------------------------


def changelist_queries(client, params=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("metricvalue_changelist"), params or {})
    assert response.status_code == 200
    return len(queries), response


def test_changelist_query_count_does_not_grow_with_rows(superuser_client, total_ar):
    one_org = Organization.objects.create(name="One")
    many_org = Organization.objects.create(name="Many")
    make_value(total_ar, one_org, date(2025, 1, 1), 100)
    few, response = changelist_queries(superuser_client, {"entity_uid": one_org.uid})
    assert len(response.context["cl"].result_list) == 1
    for offset in range(50):
        make_value(total_ar, many_org, date(2025, 1, 1) + timedelta(days=offset), 5)
    many, response = changelist_queries(superuser_client, {"entity_uid": many_org.uid})
    assert len(response.context["cl"].result_list) == 50
    assert many == few


def test_changelist_resolves_names_with_one_query_per_context_type(
    superuser_client, make_definition, organization, party, viewer
):
    org_metric = make_definition("org_count", context_type="ORGANIZATION")
    party_metric = make_definition("party_count", context_type="PARTY")
    user_metric = make_definition("user_count", context_type="USER")
    for metric, entity in (
        (org_metric, organization),
        (party_metric, party),
        (user_metric, viewer),
    ):
        make_value(metric, entity, date(2025, 1, 1), 1)
    three, response = changelist_queries(superuser_client)
    assert len(response.context["cl"].result_list) == 3
    for day in range(2, 18):
        for metric, entity in (
            (org_metric, organization),
            (party_metric, party),
            (user_metric, viewer),
        ):
            make_value(metric, entity, date(2025, 1, day), day)
    many, response = changelist_queries(superuser_client)
    assert len(response.context["cl"].result_list) == 51
    assert many == three
    html = response.content.decode()
    assert "Acme Corp" in html and "Initech (Acme Corp)" in html and "viewer@acme.test" in html


def test_changelist_formats_values_by_type_and_unit(superuser_client, make_definition, march_value):
    rate = make_definition("collection_rate", value_type="percentage")
    make_value(rate, Organization.objects.get(), MARCH, "87.5")
    response = superuser_client.get(url("metricvalue_changelist"))
    html = response.content.decode()
    assert "12,345.67" in html  # 1234567 cents
    assert "87.5%" in html


def test_changelist_columns_fit_a_laptop_screen(superuser_client, march_value):
    """Six narrow columns (checked by eye at 1280 and 1400 px with both sidebars open): no
    context type column, ISO dates, the value right-aligned by the changelist stylesheet."""
    response = superuser_client.get(url("metricvalue_changelist"))
    html = response.content.decode()
    headers = [header["text"] for header in response.context["result_headers"]]
    assert headers[1:] == ["metric", "entity", "unit", "date", "value", "updated"]
    assert '<th class="field-metric_uid"><a href="' in html and ">total_<wbr>ar</a>" in html
    assert '<td class="field-date">2025-03-01</td>' in html
    assert '<td class="field-display_value">12,345.67</td>' in html
    assert "metrics/admin/changelist.css" in html


def test_changelist_does_not_load_metadata(superuser_client, march_value):
    _, response = changelist_queries(superuser_client)
    row = response.context["cl"].result_list[0]
    assert "metadata" in row.get_deferred_fields()


def test_changelist_ignores_sorting_unless_one_entity_is_selected(superuser_client, march_value):
    response = superuser_client.get(url("metricvalue_changelist"), {"o": "4"})
    assert response.status_code == 200
    assert response.context["cl"].get_ordering_field_columns() == {}
    response = superuser_client.get(
        url("metricvalue_changelist"), {"o": "4", "entity_uid": march_value.entity_uid}
    )
    assert 4 in response.context["cl"].get_ordering_field_columns()


def test_search_matches_exact_entity_uid_or_metric_uid_only(
    superuser_client, total_ar, make_definition, organization, other_organization
):
    dso = make_definition("dso", value_type="days")
    make_value(total_ar, organization, MARCH, 1)
    make_value(dso, organization, MARCH, 2)
    make_value(total_ar, other_organization, MARCH, 3)

    def found(term):
        response = superuser_client.get(url("metricvalue_changelist"), {"q": term})
        return {(row.metric.uid, row.entity_uid) for row in response.context["cl"].result_list}

    assert found(str(organization.uid)) == {
        ("total_ar", organization.uid),
        ("dso", organization.uid),
    }
    assert found("total_ar") == {
        ("total_ar", organization.uid),
        ("total_ar", other_organization.uid),
    }
    assert found(f"dso {organization.uid}") == {("dso", organization.uid)}
    assert found("total") == set()  # no partial matching on the values table
    assert found(str(organization.uid)[:8]) == set()


def test_invalid_entity_filter_is_an_error_page_not_a_500(superuser_client, march_value):
    response = superuser_client.get(url("metricvalue_changelist"), {"entity_uid": "nope"})
    assert response.status_code == 302
    assert "e=1" in response["Location"]


# --- the analysts' task: find one organization's total_ar for March and correct it --------


def test_analyst_finds_march_total_ar_of_one_organization_and_corrects_it(
    analyst_client, total_ar, make_definition, organization, other_organization
):
    dso = make_definition("dso", value_type="days")
    for org in (organization, other_organization):
        for month in (2, 3, 4):
            make_value(total_ar, org, date(2025, month, 1), 1000000 + month, time_unit="month")
        make_value(total_ar, org, date(2025, 3, 15), 999, time_unit="day")
        make_value(dso, org, date(2025, 3, 1), 40, time_unit="month")

    # The entity filter lists organizations by name.
    response = analyst_client.get(url("metricvalue_changelist"))
    assert "Acme Corp" in response.content.decode()

    response = analyst_client.get(
        url("metricvalue_changelist"),
        {
            "entity_uid": str(organization.uid),
            "metric__id__exact": total_ar.pk,
            "time_unit__exact": "month",
            "metric_date__range__gte": "2025-03-01",
            "metric_date__range__lte": "2025-03-31",
        },
    )
    assert response.status_code == 200
    rows = response.context["cl"].result_list
    assert len(rows) == 1
    target = rows[0]
    assert (target.entity_uid, target.metric_date) == (organization.uid, date(2025, 3, 1))

    change_url = url("metricvalue_change", target.pk)
    assert analyst_client.get(change_url).status_code == 200
    response = analyst_client.post(change_url, {"value": "2500000", "timezone": "UTC"})
    assert response.status_code == 302, form_errors(response)
    target.refresh_from_db()
    assert target.value == Decimal("2500000")
    assert LogEntry.objects.filter(object_id=str(target.pk)).exists()
    # Nothing else moved.
    assert MetricValue.objects.filter(value=Decimal("2500000")).count() == 1


# --- edits go through the services ----------------------------------------------------------


def add_payload(metric, entity, **overrides) -> dict:
    payload = {
        "metric": metric.pk,
        "context_type": metric.context_type,
        "entity_uid": str(entity.uid),
        "time_unit": "month",
        "metric_date": "2025-03-01",
        "value": "1500",
        "timezone": "",
    }
    payload.update(overrides)
    return payload


def test_add_value_through_the_service_defaults_timezone_to_the_organization(
    superuser_client, total_ar, organization
):
    response = superuser_client.post(url("metricvalue_add"), add_payload(total_ar, organization))
    assert response.status_code == 302, form_errors(response)
    value = MetricValue.objects.get()
    assert value.value == Decimal(1500)
    assert value.timezone == "America/Los_Angeles"
    assert value.metadata == {}


def test_add_rounds_like_the_api(superuser_client, make_definition, organization):
    ratio = make_definition("cei", value_type="ratio")
    response = superuser_client.post(
        url("metricvalue_add"), add_payload(ratio, organization, value="0.12345675")
    )
    assert response.status_code == 302, form_errors(response)
    assert MetricValue.objects.get().value == Decimal("0.123457")


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"metric_date": "2025-03-15"}, "metric_date", "use 2025-03-01"),
        ({"value": "12.5"}, "value", "whole number"),
        ({"value": "abc"}, "value", "not numeric"),
        ({"value": "1000000000000000000"}, "value", "10^18"),
        ({"timezone": "Mars/Olympus"}, "timezone", "not a known IANA"),
        ({"context_type": "PARTY"}, "entity_uid", "No party has this uid"),
    ],
)
def test_bad_add_is_a_form_error_and_saves_nothing(
    superuser_client, total_ar, organization, overrides, field, fragment
):
    response = superuser_client.post(
        url("metricvalue_add"), add_payload(total_ar, organization, **overrides)
    )
    assert response.status_code == 200
    assert fragment in " ".join(form_errors(response)[field])
    assert not MetricValue.objects.exists()


def test_add_for_a_metric_of_another_context_is_a_form_error(superuser_client, total_ar, party):
    response = superuser_client.post(
        url("metricvalue_add"), add_payload(total_ar, party, context_type="PARTY")
    )
    assert response.status_code == 200
    assert "is for context ORGANIZATION" in " ".join(form_errors(response)["metric"])
    assert not MetricValue.objects.exists()


def test_add_to_an_inactive_metric_is_a_form_error(superuser_client, total_ar, organization):
    total_ar.is_active = False
    total_ar.save()
    response = superuser_client.post(url("metricvalue_add"), add_payload(total_ar, organization))
    assert "inactive" in " ".join(form_errors(response)["metric"])
    assert not MetricValue.objects.exists()


def test_duplicate_add_is_a_form_error_naming_the_existing_value(
    superuser_client, march_value, total_ar, organization
):
    response = superuser_client.post(url("metricvalue_add"), add_payload(total_ar, organization))
    assert response.status_code == 200
    message = " ".join(form_errors(response)["metric_date"])
    assert "already exists" in message and str(march_value.pk) in message
    assert MetricValue.objects.count() == 1
    march_value.refresh_from_db()
    assert march_value.value == Decimal(1234567)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"value": "100.5", "timezone": "UTC"}, "value"),
        ({"value": "", "timezone": "UTC"}, "value"),
        ({"value": "100", "timezone": "Not/AZone"}, "timezone"),
        ({"value": "100", "timezone": ""}, "timezone"),
    ],
)
def test_bad_change_is_a_form_error_and_changes_nothing(
    superuser_client, march_value, payload, field
):
    before = MetricValue.objects.values().get(pk=march_value.pk)
    response = superuser_client.post(url("metricvalue_change", march_value.pk), payload)
    assert response.status_code == 200
    assert form_errors(response)[field]
    assert MetricValue.objects.values().get(pk=march_value.pk) == before


def test_immutable_value_fields_are_read_only_on_change(superuser_client, march_value):
    response = superuser_client.get(url("metricvalue_change", march_value.pk))
    form = response.context["adminform"].form
    assert set(form.fields) == {"value", "timezone", "reason"}
    html = response.content.decode()
    assert "&quot;note&quot;: &quot;&lt;b&gt;bold&lt;/b&gt;&quot;" in html  # pretty, escaped
    response = superuser_client.post(
        url("metricvalue_change", march_value.pk),
        {"value": "77", "timezone": "UTC", "metric_date": "2024-01-01", "time_unit": "year"},
    )
    assert response.status_code == 302
    march_value.refresh_from_db()
    assert (march_value.value, march_value.metric_date) == (Decimal(77), MARCH)
    assert march_value.time_unit == "month"


def test_change_shows_the_value_in_storage_units_with_a_hint(superuser_client, march_value):
    response = superuser_client.get(url("metricvalue_change", march_value.pk))
    form = response.context["adminform"].form
    assert form.initial["value"] == "1234567"
    assert "cents" in form.fields["value"].help_text
    assert "12,345.67" in response.content.decode()


def test_delete_value_through_the_admin(superuser_client, march_value):
    response = superuser_client.post(url("metricvalue_delete", march_value.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not MetricValue.objects.exists()


def test_values_have_no_bulk_delete_action(superuser_client, march_value):
    response = superuser_client.get(url("metricvalue_changelist"))
    choices = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in choices
    assert "export_csv" in choices


# --- CSV export -----------------------------------------------------------------------------


def read_csv(response) -> list[dict]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(text.splitlines()))


def test_export_streams_the_filtered_changelist(
    analyst_client, total_ar, organization, other_organization
):
    make_value(total_ar, organization, MARCH, 1050, time_unit="month")
    make_value(total_ar, organization, date(2025, 4, 1), 2000, time_unit="month")
    make_value(total_ar, other_organization, MARCH, 3000, time_unit="month")
    response = analyst_client.get(
        reverse("admin:metrics_metricvalue_export"),
        {"metric_date__range__gte": "2025-03-01", "metric_date__range__lte": "2025-03-31"},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = read_csv(response)
    assert {(row["entity_name"], row["value"], row["display_value"]) for row in rows} == {
        ("Acme Corp", "1050", "10.50"),
        ("Globex", "3000", "30.00"),
    }
    assert {row["metric_date"] for row in rows} == {"2025-03-01"}


def test_export_link_carries_the_current_filters(superuser_client, march_value):
    response = superuser_client.get(url("metricvalue_changelist"), {"time_unit__exact": "month"})
    export = reverse("admin:metrics_metricvalue_export")
    assert f"{export}?time_unit__exact=month" in response.content.decode()


def test_export_action_exports_the_selected_rows(superuser_client, total_ar, organization):
    kept = make_value(total_ar, organization, MARCH, 1, time_unit="month")
    make_value(total_ar, organization, date(2025, 4, 1), 2, time_unit="month")
    response = superuser_client.post(
        url("metricvalue_changelist"),
        {"action": "export_csv", "_selected_action": [str(kept.pk)], "index": "0"},
    )
    rows = read_csv(response)
    assert [row["uid"] for row in rows] == [str(kept.pk)]


def test_export_guards_names_against_spreadsheet_formulas(superuser_client, total_ar):
    evil = Organization.objects.create(name="=HYPERLINK(1)")
    make_value(total_ar, evil, MARCH, 1, time_unit="month")
    rows = read_csv(superuser_client.get(reverse("admin:metrics_metricvalue_export")))
    assert rows[0]["entity_name"] == "'=HYPERLINK(1)"


def test_export_needs_view_permission(make_user, march_value):
    client = logged_in(make_user("plainstaff@exante.test", is_staff=True))
    assert client.get(reverse("admin:metrics_metricvalue_export")).status_code == 403


# --- definitions ----------------------------------------------------------------------------


def definition_payload(**overrides) -> dict:
    payload = {
        "uid": "new_metric",
        "name": "New metric",
        "context_type": "ORGANIZATION",
        "value_type": "count",
        "storage_unit": "raw",
        "is_snapshot": "",
        "period_definition": "as_of_date",
        "description": "",
        "formula": "",
        "is_active": "on",
    }
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value != ""}


def test_create_definition_through_the_service(analyst_client):
    response = analyst_client.post(url("metricdefinition_add"), definition_payload())
    assert response.status_code == 302, form_errors(response)
    assert MetricDefinition.objects.get().uid == "new_metric"


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"storage_unit": "cents"}, "storage_unit", "only allowed with value_type=currency"),
        ({"uid": "Bad-Uid"}, "uid", "lowercase"),
        ({"uid": "values"}, "uid", "reserved"),
        ({"uid": "total_ar"}, "uid", "already exists"),
    ],
)
def test_bad_definition_is_a_form_error(superuser_client, total_ar, overrides, field, fragment):
    response = superuser_client.post(url("metricdefinition_add"), definition_payload(**overrides))
    assert response.status_code == 200
    assert fragment in " ".join(form_errors(response)[field])
    assert MetricDefinition.objects.count() == 1


def test_definition_immutable_fields_are_read_only_after_creation(superuser_client, total_ar):
    response = superuser_client.get(url("metricdefinition_change", total_ar.pk))
    form = response.context["adminform"].form
    assert set(form.fields) == {"name", "description", "formula", "is_active"}
    response = superuser_client.post(
        url("metricdefinition_change", total_ar.pk),
        definition_payload(uid="renamed", value_type="count", storage_unit="raw", name="AR"),
    )
    assert response.status_code == 302
    total_ar.refresh_from_db()
    assert (total_ar.uid, total_ar.value_type, total_ar.name) == ("total_ar", "currency", "AR")


def test_definition_change_page_counts_values_and_the_list_does_not(
    superuser_client, total_ar, organization
):
    for day in range(1, 4):
        make_value(total_ar, organization, date(2025, 1, day), day)
    response = superuser_client.get(url("metricdefinition_change", total_ar.pk))
    html = response.content.decode()
    assert "Values stored:" in html
    assert '<div class="readonly">3</div>' in html
    with CaptureQueriesContext(connection) as queries:
        superuser_client.get(url("metricdefinition_changelist"))
    assert not any("metrics_metricvalue" in query["sql"] for query in queries)


def test_deactivate_action(superuser_client, total_ar, make_definition):
    other = make_definition("dso")
    response = superuser_client.post(
        url("metricdefinition_changelist"),
        {"action": "deactivate", "_selected_action": [total_ar.pk], "index": "0"},
    )
    assert response.status_code == 302
    total_ar.refresh_from_db()
    other.refresh_from_db()
    assert (total_ar.is_active, other.is_active) == (False, True)


def test_definition_with_values_cannot_be_deleted_and_its_values_are_not_listed(
    superuser_client, march_value
):
    definition = march_value.metric
    with CaptureQueriesContext(connection) as queries:
        response = superuser_client.get(url("metricdefinition_delete", definition.pk))
    assert response.status_code == 200
    assert "deactivate it instead" in response.content.decode()
    assert not any(
        "metrics_metricvalue" in q["sql"] and "EXISTS" not in q["sql"].upper()
        for q in queries.captured_queries
    )
    superuser_client.post(url("metricdefinition_delete", definition.pk), {"post": "yes"})
    assert MetricDefinition.objects.filter(pk=definition.pk).exists()


def test_unused_definition_can_be_deleted(superuser_client, total_ar):
    response = superuser_client.post(url("metricdefinition_delete", total_ar.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not MetricDefinition.objects.exists()


# --- display and paginator units ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value_type", "storage_unit", "value", "shown"),
    [
        ("currency", "cents", "123456789", "1,234,567.89"),
        ("currency", "cents", "-5", "-0.05"),
        ("currency", "raw", "1234.5", "1,234.50"),
        ("currency", "raw", "0.125", "0.125"),
        ("percentage", "raw", "87.500000", "87.5%"),
        ("days", "raw", "42", "42 days"),
        ("days", "raw", "1", "1 day"),
        ("count", "raw", "12000", "12,000"),
        ("ratio", "raw", "0.820000", "0.82"),
        ("ratio", "raw", "0", "0"),
    ],
)
def test_format_value(value_type, storage_unit, value, shown):
    definition = MetricDefinition(value_type=value_type, storage_unit=storage_unit)
    assert format_value(Decimal(value), definition) == shown


class TinyCapPaginator(LargeTablePaginator):
    count_cap = 5


def test_paginator_counts_exactly_below_the_cap(total_ar, organization, monkeypatch):
    # An ANALYZE made by an earlier test (the PostgreSQL import runs one, and statistics
    # outlive the test's transaction) would otherwise make this an estimate.
    monkeypatch.setattr(LargeTablePaginator, "_estimated_rows", staticmethod(lambda qs: None))
    for day in range(1, 5):
        make_value(total_ar, organization, date(2025, 1, day), day)
    paginator = TinyCapPaginator(MetricValue.objects.order_by("pk"), 2)
    assert (paginator.count, paginator.count_is_capped, paginator.count_is_estimate) == (
        4,
        False,
        False,
    )


def test_paginator_caps_the_count_instead_of_counting_everything(total_ar, organization):
    for day in range(1, 10):
        make_value(total_ar, organization, date(2025, 1, day), day)
    queryset = MetricValue.objects.filter(metric=total_ar).order_by("pk")
    with CaptureQueriesContext(connection) as queries:
        paginator = TinyCapPaginator(queryset, 2)
        assert paginator.count == 5
    assert paginator.count_is_capped
    assert "LIMIT 6" in queries.captured_queries[0]["sql"].upper()
    assert paginator.num_pages == 3


def test_capped_changelist_says_more_than(superuser_client, march_value, monkeypatch):
    monkeypatch.setattr(LargeTablePaginator, "count_cap", 0)
    # An ANALYZE made by an earlier test (the PostgreSQL import runs one, and statistics
    # outlive the test's transaction) would otherwise make this an estimate.
    monkeypatch.setattr(LargeTablePaginator, "_estimated_rows", staticmethod(lambda qs: None))
    response = superuser_client.get(url("metricvalue_changelist"))
    assert "more than 0 metric values" in response.content.decode()


@pytest.mark.postgres
def test_unfiltered_count_on_postgresql_is_the_planner_estimate(
    postgres_only, total_ar, organization
):
    party = Party.objects.create(organization=organization, name="P")
    for day in range(1, 13):
        make_value(total_ar, organization, date(2025, 1, day), day)
        make_value(total_ar, party, date(2025, 1, day), day, context_type="PARTY")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metrics_metricvalue")
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'metrics_metricvalue'::regclass")
        reltuples = int(cursor.fetchone()[0])
    assert reltuples > TinyCapPaginator.count_cap
    with CaptureQueriesContext(connection) as queries:
        paginator = TinyCapPaginator(MetricValue.objects.order_by("pk"), 10)
        assert paginator.count == reltuples
    assert paginator.count_is_estimate
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    # A filtered view is counted (capped), never estimated.
    filtered = TinyCapPaginator(MetricValue.objects.filter(context_type="PARTY").order_by("pk"), 10)
    assert (filtered.count, filtered.count_is_estimate) == (5, False)


def test_one_entitys_values_are_ordered_along_the_unique_index(superuser_client, march_value):
    response = superuser_client.get(
        url("metricvalue_changelist"), {"entity_uid": march_value.entity_uid}
    )
    queryset = response.context["cl"].queryset
    # Exactly the unique index's columns, all descending (a backward range scan): no
    # trailing "-pk", which would make PostgreSQL walk the primary key instead.
    assert list(queryset.query.order_by) == [
        "-entity_uid",
        "-metric_id",
        "-time_unit",
        "-metric_date",
    ]


# --- value history ----------------------------------------------------------------------------


def test_admin_change_and_delete_are_recorded_with_the_forms_reason(
    superuser_client, superuser, march_value
):
    change_url = url("metricvalue_change", march_value.pk)
    response = superuser_client.post(
        change_url, {"value": "2500000", "timezone": "UTC", "reason": "ledger fix"}
    )
    assert response.status_code == 302, form_errors(response)
    response = superuser_client.post(
        url("metricvalue_delete", march_value.pk), {"post": "yes", "reason": "duplicate"}
    )
    assert response.status_code == 302
    entries = MetricValueHistory.objects.filter(value_uid=march_value.uid).order_by("version")
    assert [(e.version, e.operation, e.source, e.reason) for e in entries] == [
        (1, "create", "system", None),
        (2, "update", "admin", "ledger fix"),
        (3, "delete", "admin", "duplicate"),
    ]
    assert entries[2].recorded_by_uid == superuser.uid


def test_admin_reason_over_500_characters_is_a_form_error_and_changes_nothing(
    superuser_client, march_value
):
    response = superuser_client.post(
        url("metricvalue_change", march_value.pk),
        {"value": "1", "timezone": "UTC", "reason": "x" * 501},
    )
    assert response.status_code == 200
    assert list(form_errors(response)) == ["reason"]
    assert MetricValueHistory.objects.filter(value_uid=march_value.uid).count() == 1


def test_change_page_shows_the_history_newest_first(superuser_client, march_value):
    superuser_client.post(
        url("metricvalue_change", march_value.pk), {"value": "7", "timezone": "UTC"}
    )
    page = superuser_client.get(url("metricvalue_change", march_value.pk)).content.decode()
    table = page[page.index('class="value-history"') :]
    assert table.index("<td>2</td><td>update</td>") < table.index("<td>1</td><td>create</td>")


def test_a_deleted_values_history_is_reached_from_the_search_by_its_uid(
    superuser_client, march_value
):
    superuser_client.post(url("metricvalue_delete", march_value.pk), {"post": "yes"})
    response = superuser_client.get(url("metricvalue_changelist"), {"q": str(march_value.uid)})
    history_url = url("metricvalue_value_history", march_value.uid)
    assert history_url in response.content.decode()
    page = superuser_client.get(history_url)
    assert page.status_code == 200
    assert "<td>2</td><td>delete</td>" in page.content.decode()


def test_search_by_a_live_values_uid_finds_it(superuser_client, march_value):
    response = superuser_client.get(url("metricvalue_changelist"), {"q": str(march_value.uid)})
    assert [row.pk for row in response.context["cl"].result_list] == [march_value.pk]


@pytest.mark.parametrize(("given", "expected"), [("", "sum"), ("max", "max")])
def test_admin_definition_aggregation_is_derived_when_left_empty(analyst_client, given, expected):
    response = analyst_client.post(
        url("metricdefinition_add"), definition_payload(aggregation=given)
    )
    assert response.status_code == 302, form_errors(response)
    assert MetricDefinition.objects.get().aggregation == expected


def test_admin_definition_aggregation_is_read_only_after_creation(superuser_client, total_ar):
    response = superuser_client.post(
        url("metricdefinition_change", total_ar.pk),
        definition_payload(uid="total_ar", aggregation="sum", name="AR"),
    )
    assert response.status_code == 302
    total_ar.refresh_from_db()
    assert total_ar.aggregation == "last"
