"""JWT flows: obtain, refresh with rotation, verify, logout."""

from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from conftest import PASSWORD


@pytest.fixture
def pair(anon_client, viewer):
    response = anon_client.post(
        "/api/auth/token", {"email": viewer.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]


@pytest.mark.django_db
class TestObtain:
    def test_email_and_password_give_a_pair(self, pair):
        assert set(pair) == {"access", "refresh"}

    def test_email_is_case_insensitive(self, anon_client, viewer):
        response = anon_client.post(
            "/api/auth/token", {"email": viewer.email.upper(), "password": PASSWORD}, format="json"
        )
        assert response.status_code == 200

    def test_wrong_password_is_401(self, anon_client, viewer):
        response = anon_client.post(
            "/api/auth/token", {"email": viewer.email, "password": "nope"}, format="json"
        )
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"

    def test_inactive_user_cannot_log_in(self, anon_client, viewer):
        viewer.is_active = False
        viewer.save()
        response = anon_client.post(
            "/api/auth/token", {"email": viewer.email, "password": PASSWORD}, format="json"
        )
        assert response.status_code == 401

    def test_missing_password_is_400_naming_it(self, anon_client, viewer):
        response = anon_client.post("/api/auth/token", {"email": viewer.email}, format="json")
        assert response.status_code == 400
        assert "password" in response.json()["errors"]

    def test_unknown_field_is_400(self, anon_client, viewer):
        body = {"email": viewer.email, "password": PASSWORD, "remember": True}
        response = anon_client.post("/api/auth/token", body, format="json")
        assert response.status_code == 400
        assert "remember" in response.json()["errors"]

    def test_access_token_authenticates(self, anon_client, pair):
        anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
        assert anon_client.get("/api/metrics").status_code == 200


@pytest.mark.django_db
class TestRefresh:
    def test_refresh_rotates_and_blacklists_the_old_token(self, anon_client, pair):
        first = anon_client.post(
            "/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json"
        )
        assert first.status_code == 200
        data = first.json()["data"]
        assert data["access"] and data["refresh"] and data["refresh"] != pair["refresh"]
        again = anon_client.post(
            "/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json"
        )
        assert again.status_code == 401
        assert again.json()["code"] == "authentication_failed"

    def test_access_token_is_not_a_refresh_token(self, anon_client, pair):
        response = anon_client.post(
            "/api/auth/token/refresh", {"refresh": pair["access"]}, format="json"
        )
        assert response.status_code == 401


@pytest.mark.django_db
class TestVerify:
    def test_valid_token_verifies(self, anon_client, pair):
        response = anon_client.post(
            "/api/auth/token/verify", {"token": pair["access"]}, format="json"
        )
        assert response.status_code == 200

    def test_tampered_token_fails(self, anon_client, pair):
        header, payload, signature = pair["access"].split(".")
        tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
        response = anon_client.post("/api/auth/token/verify", {"token": tampered}, format="json")
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"


@pytest.mark.django_db
class TestBearerRejections:
    def test_expired_access_token_is_401(self, anon_client, viewer):
        token = AccessToken.for_user(viewer)
        token.set_exp(lifetime=-timedelta(seconds=1))
        anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = anon_client.get("/api/metrics")
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_tampered_access_token_is_401(self, anon_client, pair):
        header, payload, signature = pair["access"].split(".")
        anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {header}.{payload}x.{signature}")
        assert anon_client.get("/api/metrics").status_code == 401

    def test_refresh_token_is_not_accepted_as_bearer(self, anon_client, viewer):
        anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(viewer)}")
        assert anon_client.get("/api/metrics").status_code == 401

    def test_token_of_deleted_user_is_401(self, anon_client, viewer):
        token = AccessToken.for_user(viewer)
        viewer.delete()
        anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert anon_client.get("/api/metrics").status_code == 401


@pytest.mark.django_db
class TestLogout:
    def test_logout_blacklists_the_refresh_token(self, anon_client, pair):
        response = anon_client.post("/api/auth/logout", {"refresh": pair["refresh"]}, format="json")
        assert response.status_code == 200
        assert response.json()["data"] == {}
        refresh = anon_client.post(
            "/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json"
        )
        assert refresh.status_code == 401

    def test_logout_with_garbage_is_401(self, anon_client):
        response = anon_client.post("/api/auth/logout", {"refresh": "garbage"}, format="json")
        assert response.status_code == 401
