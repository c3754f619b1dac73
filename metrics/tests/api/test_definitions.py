"""Metric definitions API: filters, search, sorting, pages, writes."""

import pytest

from metrics.models import MetricDefinition, MetricValue

URL = "/api/metrics"


def items(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["data"]["items"]


def uids(response) -> list[str]:
    return [item["uid"] for item in items(response)]


@pytest.fixture
def catalogue(make_definition):
    return [
        make_definition("total_ar", name="Total AR", value_type="currency", storage_unit="cents"),
        make_definition("dso", name="Days Sales Outstanding", value_type="days"),
        make_definition("open_invoice_count", name="Open invoices", value_type="count"),
        make_definition("party_ar", name="Party AR", context_type="PARTY", value_type="currency"),
        make_definition("old_rate", name="Old rate", value_type="percentage", is_active=False),
    ]


@pytest.mark.django_db
class TestList:
    def test_default_sort_is_uid(self, viewer_client, catalogue):
        assert uids(viewer_client.get(URL)) == sorted(d.uid for d in catalogue)

    def test_any_authenticated_caller_reads(self, outsider_client, catalogue):
        assert len(items(outsider_client.get(URL))) == len(catalogue)

    @pytest.mark.parametrize(
        "field", ["uid", "name", "context_type", "value_type", "created_at", "updated_at"]
    )
    def test_every_sort_field_both_directions(self, viewer_client, catalogue, field):
        def key(item):
            return (item[field], item["uid"])

        ascending = items(viewer_client.get(URL, {"sort": field}))
        assert ascending == sorted(ascending, key=key)
        plus = items(viewer_client.get(URL, {"sort": f"+{field}"}))
        assert plus == ascending
        descending = items(viewer_client.get(URL, {"sort": f"-{field}"}))
        assert [i[field] for i in descending] == sorted((i[field] for i in ascending), reverse=True)

    def test_plus_sent_unencoded_counts_as_ascending(self, viewer_client, catalogue):
        response = viewer_client.get(f"{URL}?sort=+name")
        names = [item["name"] for item in items(response)]
        assert names == sorted(names)

    def test_unknown_sort_field_is_400_listing_allowed(self, viewer_client, catalogue):
        response = viewer_client.get(URL, {"sort": "formula"})
        assert response.status_code == 400
        message = response.json()["errors"]["sort"][0]
        assert "formula" in message and "value_type" in message

    @pytest.mark.parametrize(
        ("raw", "expected"), [("true", True), ("false", False), ("1", True), ("0", False)]
    )
    def test_is_active_filter(self, viewer_client, catalogue, raw, expected):
        result = items(viewer_client.get(URL, {"is_active": raw}))
        assert result and all(item["is_active"] is expected for item in result)

    def test_bad_boolean_is_400(self, viewer_client, catalogue):
        response = viewer_client.get(URL, {"is_active": "yes"})
        assert response.status_code == 400
        assert "is_active" in response.json()["errors"]

    def test_value_type_filter(self, viewer_client, catalogue):
        assert uids(viewer_client.get(URL, {"value_type": "currency"})) == ["party_ar", "total_ar"]

    def test_context_type_filter(self, viewer_client, catalogue):
        assert uids(viewer_client.get(URL, {"context_type": "PARTY"})) == ["party_ar"]

    @pytest.mark.parametrize("param", ["value_type", "context_type"])
    def test_unknown_enum_filter_is_400(self, viewer_client, catalogue, param):
        response = viewer_client.get(URL, {param: "bogus"})
        assert response.status_code == 400
        assert param in response.json()["errors"]

    def test_search_matches_uid_or_name_case_insensitively(self, viewer_client, catalogue):
        assert uids(viewer_client.get(URL, {"search": "SALES"})) == ["dso"]
        assert uids(viewer_client.get(URL, {"search": "_ar"})) == ["party_ar", "total_ar"]

    def test_unknown_query_parameters_are_ignored(self, viewer_client, catalogue):
        assert len(items(viewer_client.get(URL, {"colour": "blue"}))) == len(catalogue)

    def test_pages_partition_the_list(self, viewer_client, catalogue):
        seen = []
        for page in (1, 2, 3):
            response = viewer_client.get(URL, {"per_page": 2, "page": page})
            seen += uids(response)
            meta = response.json()["data"]["_meta"]
            assert meta == {"page": page, "per_page": 2, "total_pages": 3, "total_items": 5}
        assert seen == sorted(d.uid for d in catalogue)

    def test_page_past_the_end_is_empty(self, viewer_client, catalogue):
        response = viewer_client.get(URL, {"page": 99})
        assert items(response) == []
        assert response.json()["data"]["_meta"]["total_items"] == 5

    def test_empty_list_has_zero_pages(self, viewer_client):
        meta = viewer_client.get(URL).json()["data"]["_meta"]
        assert meta == {"page": 1, "per_page": 25, "total_pages": 0, "total_items": 0}

    @pytest.mark.parametrize(
        ("param", "value"),
        [
            ("page", "0"),
            ("page", "-1"),
            ("page", "x"),
            ("per_page", "0"),
            ("per_page", "101"),
            ("per_page", "1.5"),
        ],
    )
    def test_out_of_range_paging_is_400(self, viewer_client, catalogue, param, value):
        response = viewer_client.get(URL, {param: value})
        assert response.status_code == 400
        assert param in response.json()["errors"]

    def test_per_page_upper_bound_is_accepted(self, viewer_client, catalogue):
        assert viewer_client.get(URL, {"per_page": 100}).status_code == 200

    def test_list_query_count_does_not_grow(
        self, viewer_client, make_definition, django_assert_max_num_queries
    ):
        for n in range(30):
            make_definition(f"metric_{n:02d}")
        # auth user + count + page
        with django_assert_max_num_queries(3):
            assert len(items(viewer_client.get(URL, {"per_page": 100}))) == 30


@pytest.mark.django_db
class TestRetrieve:
    def test_get_one(self, viewer_client, total_ar):
        response = viewer_client.get(f"{URL}/total_ar")
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["uid"] == "total_ar" and data["storage_unit"] == "cents"
        assert data["created_at"].endswith("Z")

    def test_trailing_slash_is_accepted(self, viewer_client, total_ar):
        assert viewer_client.get(f"{URL}/total_ar/").status_code == 200

    def test_unknown_is_404(self, viewer_client):
        response = viewer_client.get(f"{URL}/nope")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


@pytest.mark.django_db
class TestCreate:
    def test_staff_creates_with_defaults(self, staff_client):
        response = staff_client.post(URL, {"uid": "dso", "name": "DSO"}, format="json")
        assert response.status_code == 201
        assert response["Location"].endswith("/api/metrics/dso")
        data = response.json()["data"]
        assert data == {
            **data,
            "context_type": "ORGANIZATION",
            "value_type": "count",
            "storage_unit": "raw",
            "is_snapshot": False,
            "period_definition": "as_of_date",
            "is_active": True,
            "description": "",
            "formula": "",
        }
        assert MetricDefinition.objects.filter(uid="dso").exists()

    def test_trailing_slash_post_is_not_redirected(self, staff_client):
        response = staff_client.post(f"{URL}/", {"uid": "dso", "name": "DSO"}, format="json")
        assert response.status_code == 201

    def test_non_staff_cannot_create(self, editor_client):
        response = editor_client.post(URL, {"uid": "dso", "name": "DSO"}, format="json")
        assert response.status_code == 403
        assert not MetricDefinition.objects.exists()

    def test_duplicate_uid_is_409(self, staff_client, total_ar):
        response = staff_client.post(URL, {"uid": "total_ar", "name": "Again"}, format="json")
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "duplicate_metric"
        assert MetricDefinition.objects.get(uid="total_ar").name == total_ar.name

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"uid": "values", "name": "x"}, "uid"),
            ({"uid": "bulk", "name": "x"}, "uid"),
            ({"uid": "Bad-Uid", "name": "x"}, "uid"),
            ({"uid": "a", "name": "x"}, "uid"),
            ({"uid": "9lives", "name": "x"}, "uid"),
            ({"uid": "x" * 65, "name": "x"}, "uid"),
            ({"name": "x"}, "uid"),
            ({"uid": "ok_uid"}, "name"),
            ({"uid": "ok_uid", "name": ""}, "name"),
            ({"uid": "ok_uid", "name": "x" * 201}, "name"),
            ({"uid": "ok_uid", "name": 42}, "name"),
            ({"uid": "ok_uid", "name": "x", "value_type": "money"}, "value_type"),
            ({"uid": "ok_uid", "name": "x", "context_type": "organization"}, "context_type"),
            ({"uid": "ok_uid", "name": "x", "is_snapshot": "true"}, "is_snapshot"),
            ({"uid": "ok_uid", "name": "x", "storage_unit": "cents"}, "storage_unit"),
            ({"uid": "ok_uid", "name": "x", "description": "d" * 10_001}, "description"),
            ({"uid": "ok_uid", "name": "x", "colour": "blue"}, "colour"),
            ({"uid": "ok_uid", "name": "x", "period_definition": "weekly"}, "period_definition"),
        ],
    )
    def test_invalid_body_is_400_naming_the_field(self, staff_client, body, field):
        response = staff_client.post(URL, body, format="json")
        assert response.status_code == 400, response.content
        payload = response.json()
        assert payload["code"] == "validation_error"
        assert field in payload["errors"]
        assert not MetricDefinition.objects.exists()

    def test_cents_with_currency_is_fine(self, staff_client):
        body = {"uid": "ar", "name": "AR", "value_type": "currency", "storage_unit": "cents"}
        assert staff_client.post(URL, body, format="json").status_code == 201

    def test_body_that_is_not_an_object_is_400(self, staff_client):
        response = staff_client.post(URL, [1, 2], format="json")
        assert response.status_code == 400


@pytest.mark.django_db
class TestUpdate:
    def test_mutable_fields_change(self, staff_client, total_ar):
        body = {"name": "AR", "description": "d", "formula": "sum(open)", "is_active": False}
        response = staff_client.patch(f"{URL}/total_ar", body, format="json")
        assert response.status_code == 200
        total_ar.refresh_from_db()
        assert (total_ar.name, total_ar.description, total_ar.formula, total_ar.is_active) == (
            "AR",
            "d",
            "sum(open)",
            False,
        )

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("uid", "other_uid"),
            ("context_type", "PARTY"),
            ("value_type", "count"),
            ("storage_unit", "raw"),
            ("is_snapshot", False),
            ("period_definition", "calendar_month"),
        ],
    )
    def test_immutable_field_with_a_different_value_is_400(
        self, staff_client, total_ar, field, value
    ):
        response = staff_client.patch(
            f"{URL}/total_ar", {field: value, "name": "New"}, format="json"
        )
        assert response.status_code == 400
        assert field in response.json()["errors"]
        total_ar.refresh_from_db()
        assert total_ar.name == "Total AR Outstanding"

    def test_immutable_fields_with_the_same_value_are_ignored(self, staff_client, total_ar):
        body = {
            "uid": "total_ar",
            "context_type": "ORGANIZATION",
            "value_type": "currency",
            "storage_unit": "cents",
            "is_snapshot": True,
            "period_definition": "as_of_date",
            "name": "Renamed",
        }
        response = staff_client.patch(f"{URL}/total_ar", body, format="json")
        assert response.status_code == 200
        assert response.json()["data"]["name"] == "Renamed"

    def test_unknown_field_is_400(self, staff_client, total_ar):
        response = staff_client.patch(f"{URL}/total_ar", {"colour": "red"}, format="json")
        assert response.status_code == 400
        assert "colour" in response.json()["errors"]

    def test_read_only_timestamps_are_not_writable(self, staff_client, total_ar):
        body = {"created_at": "2000-01-01T00:00:00Z"}
        response = staff_client.patch(f"{URL}/total_ar", body, format="json")
        assert response.status_code == 400

    def test_non_staff_cannot_update(self, editor_client, total_ar):
        response = editor_client.patch(f"{URL}/total_ar", {"name": "X"}, format="json")
        assert response.status_code == 403

    def test_unknown_metric_is_404(self, staff_client):
        response = staff_client.patch(f"{URL}/nope", {"name": "X"}, format="json")
        assert response.status_code == 404

    def test_put_is_not_allowed(self, staff_client, total_ar):
        response = staff_client.put(f"{URL}/total_ar", {"name": "X"}, format="json")
        assert response.status_code == 405


@pytest.mark.django_db
class TestDelete:
    def test_unused_metric_is_deleted(self, staff_client, total_ar):
        response = staff_client.delete(f"{URL}/total_ar")
        assert response.status_code == 200
        assert response.json()["data"] == {}
        assert not MetricDefinition.objects.filter(uid="total_ar").exists()

    def test_metric_with_values_is_409_metric_in_use(self, staff_client, total_ar, organization):
        MetricValue.objects.create(
            metric=total_ar,
            context_type="ORGANIZATION",
            entity_uid=organization.uid,
            metric_date="2026-03-01",
            value=1,
        )
        response = staff_client.delete(f"{URL}/total_ar")
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "metric_in_use"
        assert "is_active=false" in body["message"]
        assert MetricDefinition.objects.filter(uid="total_ar").exists()

    def test_non_staff_cannot_delete(self, editor_client, total_ar):
        assert editor_client.delete(f"{URL}/total_ar").status_code == 403
        assert MetricDefinition.objects.filter(uid="total_ar").exists()
