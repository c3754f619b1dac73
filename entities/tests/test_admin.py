"""Admin for organizations, parties, users, memberships and API keys: every page for a
superuser and an analyst, the email-login user forms, writes through the entity services,
and API keys whose secret is never shown."""

from datetime import date

import pytest
from django.urls import reverse

from entities.models import ApiKey, Membership, Organization, Party, Role, User
from entities.services import api_key_create
from metrics.models import MetricValue


@pytest.fixture
def api_key(org_admin, organization):
    key, raw = api_key_create(user=org_admin, organization=organization, name="CI export")
    key.raw = raw
    return key


@pytest.fixture
def objects(organization, party, org_admin, api_key):
    membership = Membership.objects.get(user=org_admin, organization=organization)
    return {
        "organization": organization,
        "party": party,
        "user": org_admin,
        "membership": membership,
        "apikey": api_key,
    }


def page_url(model: str, page: str, obj=None) -> str:
    name = f"admin:entities_{model}_{page}"
    return reverse(name, args=[obj.pk]) if page in ("change", "delete") else reverse(name)


PAGES = ["changelist", "add", "change", "delete"]
MODELS = ["organization", "party", "user", "membership", "apikey"]

# What each role gets on each page; everything else is a 200.
SUPERUSER_FORBIDDEN = {("apikey", "add"), ("apikey", "delete")}
ANALYST_ALLOWED = {(model, page) for model in MODELS[:4] for page in ("changelist", "change")}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("model", MODELS)
def test_superuser_opens_every_page(superuser_client, objects, model, page):
    response = superuser_client.get(page_url(model, page, objects[model]))
    expected = 403 if (model, page) in SUPERUSER_FORBIDDEN else 200
    assert response.status_code == expected


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("model", MODELS)
def test_analyst_views_entities_but_manages_nothing(analyst_client, objects, model, page):
    response = analyst_client.get(page_url(model, page, objects[model]))
    expected = 200 if (model, page) in ANALYST_ALLOWED else 403
    assert response.status_code == expected


@pytest.mark.parametrize("page", ["changelist", "add"])
def test_analyst_cannot_manage_groups(analyst_client, page):
    assert analyst_client.get(reverse(f"admin:auth_group_{page}")).status_code == 403


def test_analyst_cannot_change_a_user_by_post(analyst_client, viewer):
    response = analyst_client.post(
        page_url("user", "change", viewer), {"email": "x@y.test", "is_superuser": "on"}
    )
    assert response.status_code == 403
    viewer.refresh_from_db()
    assert (viewer.email, viewer.is_superuser) == ("viewer@acme.test", False)


def test_admin_index_lists_what_the_analyst_may_see(analyst_client):
    html = analyst_client.get(reverse("admin:index")).content.decode()
    assert "Metric values" in html and "Organizations" in html
    assert "API keys" not in html and "Groups" not in html


# --- users ----------------------------------------------------------------------------------


def test_add_user_with_password_twice(superuser_client):
    response = superuser_client.post(
        page_url("user", "add"),
        {
            "email": "New.Person@Example.COM",
            "usable_password": "true",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(email="new.person@example.com")
    assert user.check_password("a-long-passphrase-42")


def test_add_user_rejects_mismatched_passwords_and_existing_email(superuser_client, viewer):
    response = superuser_client.post(
        page_url("user", "add"),
        {
            "email": "VIEWER@acme.test",
            "usable_password": "true",
            "password1": "a-long-passphrase-42",
            "password2": "another-passphrase-42",
        },
    )
    errors = response.context["adminform"].form.errors
    assert "already exists" in " ".join(errors["email"])
    assert "password2" in errors
    assert User.objects.filter(email__iexact="viewer@acme.test").count() == 1


def test_user_change_page_shows_the_hash_widget_never_the_hash(superuser_client, viewer):
    html = superuser_client.get(page_url("user", "change", viewer)).content.decode()
    assert "Reset password" in html  # the read-only hash widget's link
    assert viewer.password not in html
    assert viewer.password.split("$")[-1] not in html


def test_analyst_sees_no_password_hash(analyst_client, viewer):
    response = analyst_client.get(page_url("user", "change", viewer))
    html = response.content.decode()
    assert response.status_code == 200
    assert viewer.password.split("$")[-1] not in html


def test_user_page_shows_memberships_inline_and_changes_them_through_the_service(
    superuser_client, org_admin, organization, other_organization
):
    membership = Membership.objects.get(user=org_admin)
    url = page_url("user", "change", org_admin)
    assert "memberships-0-role" in superuser_client.get(url).content.decode()
    data = {
        "email": org_admin.email,
        "first_name": "",
        "last_name": "",
        "timezone": "UTC",
        "is_active": "on",
        "date_joined_0": "2025-01-01",
        "date_joined_1": "00:00:00",
        "memberships-TOTAL_FORMS": "2",
        "memberships-INITIAL_FORMS": "1",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-id": str(membership.pk),
        "memberships-0-user": str(org_admin.pk),
        "memberships-0-role": Role.VIEWER,  # the organization's only admin
        "memberships-1-user": str(org_admin.pk),
        "memberships-1-organization": str(other_organization.pk),
        "memberships-1-role": Role.EDITOR,
    }
    response = superuser_client.post(url, data)
    # The last-admin rule (entities.services) refuses, and the whole change rolls back.
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    assert not Membership.objects.filter(organization=other_organization).exists()

    data["memberships-0-role"] = Role.ADMIN
    response = superuser_client.post(url, data)
    assert response.status_code == 302
    added = Membership.objects.get(organization=other_organization)
    assert (added.user, added.role) == (org_admin, Role.EDITOR)


# --- organizations, parties, memberships ----------------------------------------------------


def test_create_organization_through_the_service(superuser_client):
    response = superuser_client.post(
        page_url("organization", "add"), {"name": "Initrode", "timezone": "Europe/Berlin"}
    )
    assert response.status_code == 302
    assert Organization.objects.get().timezone == "Europe/Berlin"


def test_bad_timezone_is_a_form_error(superuser_client, organization):
    response = superuser_client.post(
        page_url("organization", "change", organization),
        {"name": "Acme", "timezone": "Nowhere/Land", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "timezone" in response.context["adminform"].form.errors
    organization.refresh_from_db()
    assert organization.name == "Acme Corp"


def test_duplicate_party_reference_is_a_form_error(superuser_client, party, organization):
    response = superuser_client.post(
        page_url("party", "add"),
        {"organization": organization.pk, "name": "Copy", "external_ref": party.external_ref},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert str(party.uid) in " ".join(errors["external_ref"])
    assert Party.objects.count() == 1


def test_duplicate_membership_is_a_form_error(superuser_client, viewer, organization):
    response = superuser_client.post(
        page_url("membership", "add"),
        {"user": viewer.pk, "organization": organization.pk, "role": Role.EDITOR},
    )
    assert response.status_code == 200
    assert Membership.objects.get(user=viewer).role == Role.VIEWER


def test_entity_lists_link_to_their_values(superuser_client, organization):
    html = superuser_client.get(page_url("organization", "changelist")).content.decode()
    assert f"/admin/metrics/metricvalue/?entity_uid={organization.uid}" in html


def test_entity_with_values_cannot_be_deleted(superuser_client, party, total_ar):
    metric = total_ar
    metric.context_type = "PARTY"
    metric.save()
    MetricValue.objects.create(
        metric=metric,
        context_type="PARTY",
        entity_uid=party.uid,
        metric_date=date(2025, 1, 1),
        value=1,
    )
    response = superuser_client.get(page_url("party", "delete", party))
    assert "metric values refer to it" in response.content.decode()
    superuser_client.post(page_url("party", "delete", party), {"post": "yes"})
    assert Party.objects.filter(pk=party.pk).exists()


def test_entity_without_values_can_be_deleted(superuser_client, party):
    response = superuser_client.post(page_url("party", "delete", party), {"post": "yes"})
    assert response.status_code == 302
    assert not Party.objects.filter(pk=party.pk).exists()


# --- API keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["changelist", "change"])
def test_api_key_pages_never_show_the_secret(superuser_client, api_key, page):
    html = superuser_client.get(page_url("apikey", page, api_key)).content.decode()
    assert api_key.key_snippet in html
    assert api_key.raw not in html
    assert api_key.lookup not in html
    assert api_key.key_hash not in html


def test_revoke_action(superuser_client, api_key):
    response = superuser_client.post(
        page_url("apikey", "changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk], "index": "0"},
    )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert ApiKey.objects.count() == 1
