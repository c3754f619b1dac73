"""Organizations and parties : visibility-narrowed lists and lookups, staff-only
organization creation, admin-only party management, strict bodies, 409 on a duplicate
external_ref decided by the database."""

import uuid

import pytest

from entities.models import Organization, Party, Role

pytestmark = pytest.mark.django_db


def items(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["data"]["items"]


def meta(response) -> dict:
    return response.json()["data"]["_meta"]


@pytest.fixture
def admin_client(client_for, org_admin):
    return client_for(org_admin)


class TestOrganizationList:
    def test_member_lists_only_own_organizations(
        self, viewer_client, organization, other_organization
    ):
        response = viewer_client.get("/api/organizations")
        assert [item["uid"] for item in items(response)] == [str(organization.uid)]
        assert meta(response) == {"page": 1, "per_page": 25, "total_pages": 1, "total_items": 1}

    def test_staff_lists_all(self, staff_client, organization, other_organization):
        names = [item["name"] for item in items(staff_client.get("/api/organizations"))]
        assert names == ["Acme Corp", "Globex"]

    def test_fields(self, viewer_client, organization):
        (item,) = items(viewer_client.get("/api/organizations"))
        assert set(item) == {"uid", "name", "timezone", "is_active", "created_at", "updated_at"}
        assert item["timezone"] == "America/Los_Angeles"
        assert item["created_at"].endswith("Z")

    def test_search_filter_and_sort(self, staff_client, organization, other_organization):
        Organization.objects.create(name="Acme Labs", is_active=False)
        found = items(staff_client.get("/api/organizations", {"search": "acme", "sort": "-name"}))
        assert [item["name"] for item in found] == ["Acme Labs", "Acme Corp"]
        active = items(staff_client.get("/api/organizations", {"is_active": "false"}))
        assert [item["name"] for item in active] == ["Acme Labs"]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"is_active": "yes"}, "is_active"),
            ({"sort": "timezone"}, "sort"),
            ({"page": "0"}, "page"),
            ({"per_page": "101"}, "per_page"),
        ],
    )
    def test_bad_query_is_400_naming_the_parameter(self, viewer_client, params, field):
        response = viewer_client.get("/api/organizations", params)
        assert response.status_code == 400
        assert field in response.json()["errors"]

    def test_pagination_never_overlaps_on_equal_names(self, staff_client):
        for _ in range(5):
            Organization.objects.create(name="Same")
        pages = [
            [
                item["uid"]
                for item in items(
                    staff_client.get("/api/organizations", {"page": n, "per_page": 2})
                )
            ]
            for n in (1, 2, 3)
        ]
        flat = [uid for page in pages for uid in page]
        assert len(flat) == len(set(flat)) == 5
        assert items(staff_client.get("/api/organizations", {"page": 9})) == []


class TestOrganizationDetail:
    def test_invisible_is_404_like_missing(self, outsider_client, organization):
        hidden = outsider_client.get(f"/api/organizations/{organization.uid}")
        missing_uid = uuid.uuid4()
        missing = outsider_client.get(f"/api/organizations/{missing_uid}")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["message"].replace(str(organization.uid), "?") == missing.json()[
            "message"
        ].replace(str(missing_uid), "?")
        assert "Acme" not in hidden.content.decode()

    def test_malformed_uid_is_404(self, viewer_client):
        assert viewer_client.get("/api/organizations/not-a-uuid").status_code == 404

    def test_trailing_slash_is_accepted(self, viewer_client, organization):
        assert viewer_client.get(f"/api/organizations/{organization.uid}/").status_code == 200


class TestOrganizationCreate:
    def test_staff_creates_and_is_not_made_a_member(self, staff, staff_client):
        response = staff_client.post("/api/organizations", {"name": "Initrode", "timezone": "UTC"})
        assert response.status_code == 201, response.content
        data = response.json()["data"]
        assert response["Location"].endswith(f"/api/organizations/{data['uid']}")
        assert not staff.memberships.exists()

    @pytest.mark.parametrize("who", ["viewer_client", "outsider_client"])
    def test_non_staff_get_403(self, request, who):
        client = request.getfixturevalue(who)
        response = client.post("/api/organizations", {"name": "Mine"})
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert not Organization.objects.filter(name="Mine").exists()

    def test_org_admin_cannot_create(self, admin_client):
        assert admin_client.post("/api/organizations", {"name": "Mine"}).status_code == 403

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "name"),
            ({"name": ""}, "name"),
            ({"name": 5}, "name"),
            ({"name": "x" * 201}, "name"),
            ({"name": "A", "timezone": "Mars/Base"}, "timezone"),
            ({"name": "A", "is_active": "true"}, "is_active"),
            ({"name": "A", "owner": "me"}, "owner"),
        ],
    )
    def test_bad_body_is_400_naming_the_field(self, staff_client, body, field):
        response = staff_client.post("/api/organizations", body)
        assert response.status_code == 400
        assert field in response.json()["errors"]
        assert not Organization.objects.exists()


class TestOrganizationUpdate:
    def test_admin_renames(self, admin_client, organization):
        url = f"/api/organizations/{organization.uid}"
        response = admin_client.patch(url, {"name": "Acme Inc", "timezone": "Europe/Berlin"})
        assert response.status_code == 200
        organization.refresh_from_db()
        assert (organization.name, organization.timezone) == ("Acme Inc", "Europe/Berlin")

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
    def test_other_members_get_403(self, make_user, client_for, organization, role):
        client = client_for(make_user(organization=organization, role=role))
        response = client.patch(f"/api/organizations/{organization.uid}", {"name": "X"})
        assert response.status_code == 403
        organization.refresh_from_db()
        assert organization.name == "Acme Corp"

    def test_only_staff_change_is_active(self, admin_client, staff_client, organization):
        url = f"/api/organizations/{organization.uid}"
        assert admin_client.patch(url, {"is_active": False}).status_code == 403
        assert admin_client.patch(url, {"is_active": True}).status_code == 200
        assert staff_client.patch(url, {"is_active": False}).status_code == 200
        organization.refresh_from_db()
        assert organization.is_active is False

    def test_outsider_gets_404(self, outsider_client, organization):
        url = f"/api/organizations/{organization.uid}"
        assert outsider_client.patch(url, {"name": "Pwned"}).status_code == 404


class TestPartyList:
    def test_lists_only_visible_parties_and_counts_them(self, viewer_client, party, other_party):
        response = viewer_client.get("/api/parties")
        assert [item["uid"] for item in items(response)] == [str(party.uid)]
        assert meta(response)["total_items"] == 1

    def test_filters(self, staff_client, organization, other_organization, party, other_party):
        Party.objects.create(organization=organization, name="Umbrella", external_ref="U-9")
        by_org = items(staff_client.get("/api/parties", {"organization_uid": organization.uid}))
        assert {item["name"] for item in by_org} == {"Initech", "Umbrella"}
        by_ref = items(staff_client.get("/api/parties", {"search": "u-9"}))
        assert [item["name"] for item in by_ref] == ["Umbrella"]

    def test_filtering_by_a_foreign_organization_shows_nothing(
        self, viewer_client, other_organization, other_party
    ):
        response = viewer_client.get("/api/parties", {"organization_uid": other_organization.uid})
        assert items(response) == []
        assert meta(response)["total_items"] == 0

    def test_bad_organization_filter_is_400(self, viewer_client):
        response = viewer_client.get("/api/parties", {"organization_uid": "nope"})
        assert response.status_code == 400
        assert "organization_uid" in response.json()["errors"]


class TestPartyCreate:
    def test_admin_creates(self, admin_client, organization):
        body = {"organization_uid": str(organization.uid), "name": "Wayne", "external_ref": "W-1"}
        response = admin_client.post("/api/parties", body)
        assert response.status_code == 201, response.content
        data = response.json()["data"]
        assert data["organization_uid"] == str(organization.uid)
        assert response["Location"].endswith(f"/api/parties/{data['uid']}")

    def test_duplicate_external_ref_is_409_with_existing_uid(self, admin_client, party):
        body = {
            "organization_uid": str(party.organization.uid),
            "name": "Dup",
            "external_ref": "C-1",
        }
        response = admin_client.post("/api/parties", body)
        assert response.status_code == 409
        assert response.json()["code"] == "duplicate_party"
        assert response.json()["data"] == {"uid": str(party.uid)}
        assert Party.objects.count() == 1

    def test_blank_external_refs_do_not_conflict(self, admin_client, organization):
        for name in ("A", "B"):
            body = {"organization_uid": str(organization.uid), "name": name, "external_ref": ""}
            assert admin_client.post("/api/parties", body).status_code == 201

    def test_same_external_ref_in_another_organization_is_fine(
        self, staff_client, party, other_organization
    ):
        body = {"organization_uid": str(other_organization.uid), "name": "X", "external_ref": "C-1"}
        assert staff_client.post("/api/parties", body).status_code == 201

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
    def test_non_admin_member_gets_403(self, make_user, client_for, organization, role):
        client = client_for(make_user(organization=organization, role=role))
        body = {"organization_uid": str(organization.uid), "name": "Nope"}
        assert client.post("/api/parties", body).status_code == 403
        assert not Party.objects.filter(name="Nope").exists()

    def test_foreign_organization_is_400_like_a_missing_one(self, outsider_client, organization):
        hidden = outsider_client.post(
            "/api/parties", {"organization_uid": str(organization.uid), "name": "X"}
        )
        assert hidden.status_code == 400
        assert "organization_uid" in hidden.json()["errors"]
        assert "Acme" not in hidden.content.decode()
        assert not Party.objects.exists()

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "X"}, "organization_uid"),
            ({"organization_uid": "bad", "name": "X"}, "organization_uid"),
            ({"name": "X", "external_ref": 12}, "external_ref"),
            ({"name": "X", "is_active": 1}, "is_active"),
            ({"name": "X", "color": "red"}, "color"),
        ],
    )
    def test_bad_body_is_400(self, admin_client, organization, body, field):
        body = (
            {"organization_uid": str(organization.uid), **body}
            if field != "organization_uid"
            else body
        )
        response = admin_client.post("/api/parties", body)
        assert response.status_code == 400
        assert field in response.json()["errors"]


class TestPartyUpdate:
    def test_admin_updates(self, admin_client, party):
        response = admin_client.patch(
            f"/api/parties/{party.uid}", {"name": "Initech Ltd", "external_ref": None}
        )
        assert response.status_code == 200
        party.refresh_from_db()
        assert (party.name, party.external_ref) == ("Initech Ltd", "")

    def test_viewer_gets_403_and_nothing_changes(self, viewer_client, party):
        response = viewer_client.patch(f"/api/parties/{party.uid}", {"name": "Hacked"})
        assert response.status_code == 403
        party.refresh_from_db()
        assert party.name == "Initech"

    def test_organization_is_immutable(self, admin_client, party, other_organization):
        url = f"/api/parties/{party.uid}"
        moved = admin_client.patch(url, {"organization_uid": str(other_organization.uid)})
        assert moved.status_code == 400
        assert "organization_uid" in moved.json()["errors"]
        same = admin_client.patch(url, {"organization_uid": str(party.organization.uid)})
        assert same.status_code == 200

    def test_duplicate_external_ref_on_update_is_409(self, admin_client, party, organization):
        other = Party.objects.create(organization=organization, name="Other", external_ref="C-2")
        response = admin_client.patch(f"/api/parties/{other.uid}", {"external_ref": "C-1"})
        assert response.status_code == 409
        assert response.json()["data"] == {"uid": str(party.uid)}
        other.refresh_from_db()
        assert other.external_ref == "C-2"

    def test_outsider_gets_404(self, outsider_client, party):
        assert outsider_client.patch(f"/api/parties/{party.uid}", {"name": "X"}).status_code == 404
