"""Sessions, Django's authentication and messages serve the admin and pass API requests by."""

import pytest
from django.test import Client

from conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_an_api_request_gets_no_session_and_no_django_user(anon_client):
    response = anon_client.get("/api/metrics")

    assert response.status_code == 401
    assert not hasattr(response.wsgi_request, "session")
    assert not hasattr(response.wsgi_request, "auser")


def test_the_admin_keeps_sessions_csrf_and_frame_protection(superuser):
    client = Client(enforce_csrf_checks=True)
    login_page = client.get("/admin/login/")
    assert login_page.status_code == 200
    assert login_page.headers["X-Frame-Options"] == "DENY"
    token = login_page.cookies["csrftoken"].value

    refused = client.post(
        "/admin/login/", {"username": superuser.email, "password": "x"}, follow=False
    )
    assert refused.status_code == 403

    logged_in = client.post(
        "/admin/login/?next=/admin/",
        {"username": superuser.email, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert logged_in.status_code == 302
    assert logged_in.headers["Location"] == "/admin/"
    assert "sessionid" in logged_in.cookies
    assert client.get("/admin/").status_code == 200
