"""Rate limits: per user, per API key and per client IP on /api/auth/*, answered with a 429
``throttled`` envelope and ``Retry-After``; counters shared by every worker."""

import time
import uuid

import pytest
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.test import APIRequestFactory

from conftest import PASSWORD
from exante.api.throttling import (
    PrincipalRateThrottle,
    ScopedIPRateThrottle,
    parse_rate,
    retry_after,
)


@pytest.fixture
def rates(settings):
    """``rates(user=..., api_key=..., auth=...)`` sets the limits for this test."""

    def set_rates(**limits):
        current = dict(settings.REST_FRAMEWORK)
        current["DEFAULT_THROTTLE_RATES"] = {"user": "", "api_key": "", "auth": "", **limits}
        settings.REST_FRAMEWORK = current

    return set_rates


@pytest.mark.django_db
class TestPerPrincipal:
    def test_user_over_the_limit_gets_429_envelope_with_retry_after(self, rates, viewer_client):
        rates(user="3/min")
        statuses = [viewer_client.get("/api/metrics").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        response = viewer_client.get("/api/metrics")
        body = response.json()
        assert body["status"] == "error" and body["status_code"] == 429
        assert body["code"] == "throttled"
        assert 1 <= int(response["Retry-After"]) <= 121

    def test_users_have_separate_budgets(self, rates, viewer_client, editor_client):
        rates(user="2/min")
        for _ in range(2):
            assert viewer_client.get("/api/metrics").status_code == 200
        assert viewer_client.get("/api/metrics").status_code == 429
        assert editor_client.get("/api/metrics").status_code == 200

    def test_a_key_has_its_own_budget_apart_from_its_user(
        self, rates, editor, organization, make_api_key, key_client, client_for
    ):
        rates(user="2/min", api_key="3/min")
        _, raw = make_api_key(editor, organization)
        keyed, jwt = key_client(raw), client_for(editor)
        assert [keyed.get("/api/metrics").status_code for _ in range(4)] == [200, 200, 200, 429]
        assert [jwt.get("/api/metrics").status_code for _ in range(3)] == [200, 200, 429]

    def test_refused_requests_are_not_counted(self, rates, viewer, viewer_client):
        from django.core.cache import cache

        rates(user="2/min")
        for _ in range(2):
            viewer_client.get("/api/metrics")
        for _ in range(5):
            assert viewer_client.get("/api/metrics").status_code == 429
        window = int(time.time() // 60)
        counted = sum(
            cache.get(f"throttle:user:u{viewer.uid}:{w}", 0) for w in (window - 1, window)
        )
        assert counted == 2

    def test_anonymous_requests_are_refused_before_counting(self, rates, anon_client):
        rates(user="1/min")
        assert [anon_client.get("/api/metrics").status_code for _ in range(3)] == [401] * 3


@pytest.mark.django_db
class TestAuthPerIP:
    def login(self, client, email, ip="10.0.0.1", **extra):
        return client.post(
            "/api/auth/token",
            {"email": email, "password": PASSWORD},
            REMOTE_ADDR=ip,
            **extra,
        )

    def test_token_endpoint_is_limited_per_ip(self, rates, anon_client, viewer):
        rates(auth="3/min")
        statuses = [self.login(anon_client, viewer.email).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        response = self.login(anon_client, viewer.email)
        assert response.json()["code"] == "throttled"
        assert "Retry-After" in response
        assert self.login(anon_client, viewer.email, ip="10.0.0.2").status_code == 200

    def test_failed_logins_count_too(self, rates, anon_client, viewer):
        rates(auth="2/min")
        bad = {"email": viewer.email, "password": "wrong"}
        for _ in range(2):
            assert anon_client.post("/api/auth/token", bad).status_code == 401
        assert anon_client.post("/api/auth/token", bad).status_code == 429

    def test_forged_forwarded_for_does_not_reset_the_limit(self, rates, anon_client, viewer):
        rates(auth="2/min")
        for n in range(2):
            self.login(anon_client, viewer.email, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        response = self.login(anon_client, viewer.email, HTTP_X_FORWARDED_FOR="192.0.2.99")
        assert response.status_code == 429

    def test_refresh_shares_the_auth_budget(self, rates, anon_client, viewer):
        rates(auth="2/min")
        self.login(anon_client, viewer.email)
        anon_client.post("/api/auth/token/refresh", {"refresh": "x"}, REMOTE_ADDR="10.0.0.1")
        assert self.login(anon_client, viewer.email).status_code == 429


class TestRates:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("120/min", (120, 60)),
            ("5/s", (5, 1)),
            ("1000/h", (1000, 3600)),
            ("10/day", (10, 86400)),
            ("100/10m", (100, 600)),
            ("", None),
            (None, None),
        ],
    )
    def test_parse_rate(self, text, expected):
        assert parse_rate(text) == expected

    @pytest.mark.parametrize("text", ["fast", "10", "10/week", "-1/min"])
    def test_bad_rate_is_an_error(self, text):
        with pytest.raises(ValueError):
            parse_rate(text)

    def test_retry_after_waits_for_the_previous_window_to_decay(self):
        # 10/min, 10 accepted last minute, 0 now, 30 s in: 5 weighted; fits now.
        assert retry_after(10, 0, 10, 30, 60) == 0
        # 10 last minute, 5 now, 30 s in: 10 weighted, the next needs previous ≤ 4 → 36 s in.
        assert retry_after(10, 5, 10, 30, 60) == pytest.approx(6)

    def test_retry_after_waits_for_the_next_window_when_this_one_is_full(self):
        # 10 accepted in this window, 15 s in: 45 s to the window's end, then 6 s of decay.
        assert retry_after(0, 10, 10, 15, 60) == pytest.approx(45 + 6)


class FakeRequest:
    def __init__(self, user, ip="10.0.0.9"):
        self.user = user
        self.META = {"REMOTE_ADDR": ip}


class FakeUser:
    is_authenticated = True

    def __init__(self, pk):
        self.uid = uuid.UUID(int=pk)


@pytest.fixture
def view():
    return type("View", (), {"throttle_scope": None})()


class TestSlidingWindow:
    def make(self, rates, cache, now, rate="4/min"):
        rates(user=rate)
        throttle = PrincipalRateThrottle()
        throttle.cache = cache
        throttle.timer = lambda: now[0]
        return throttle

    def test_the_previous_window_still_counts_after_the_boundary(self, rates, view):
        cache, now = LocMemCache(f"t-{uuid.uuid4()}", {}), [600.0]
        throttle = self.make(rates, cache, now)
        request = FakeRequest(FakeUser(1))
        assert all(throttle.allow_request(request, view) for _ in range(4))
        assert not throttle.allow_request(request, view)
        now[0] = 661.0  # just past the boundary: a fixed window would allow 4 more at once
        assert not throttle.allow_request(request, view)
        now[0] = 705.0  # 45 s in: the previous window weighs 1
        assert throttle.allow_request(request, view)

    def test_retry_after_covers_the_decay_of_a_full_window(self, rates, view):
        cache, now = LocMemCache(f"t-{uuid.uuid4()}", {}), [600.0]
        throttle = self.make(rates, cache, now, rate="1/min")
        request = FakeRequest(FakeUser(2))
        assert throttle.allow_request(request, view)
        assert not throttle.allow_request(request, view)
        assert throttle.wait() == 60 + 60

    def test_a_cache_outage_fails_open(self, rates, view):
        class Broken:
            def add(self, *args, **kwargs):
                raise ConnectionError("redis down")

        rates(user="1/min")
        throttle = PrincipalRateThrottle()
        throttle.cache = Broken()
        request = FakeRequest(FakeUser(3))
        assert throttle.allow_request(request, view)
        assert throttle.allow_request(request, view)


@pytest.fixture
def redis_cache(settings):
    from django.core.cache.backends.redis import RedisCache

    location = settings.REDIS_URL or "redis://127.0.0.1:6379/0"

    def make():
        # One client per simulated worker; a fresh prefix isolates this test run.
        return RedisCache(location, {"KEY_PREFIX": prefix})

    prefix = f"exante-test-{uuid.uuid4()}"
    probe = make()
    try:
        probe.set("probe", 1, 5)
    except Exception as exc:
        pytest.skip(f"needs Redis at {location}: {exc}")
    yield make
    probe.delete_many([key for key in [probe.make_key("probe")]])


def test_workers_share_counters_through_redis(rates, redis_cache, view):
    """Two throttles with separate Redis clients (two gunicorn workers) spend one budget."""
    rates(user="5/min")
    workers = []
    for _ in range(2):
        throttle = PrincipalRateThrottle()
        throttle.cache = redis_cache()
        workers.append(throttle)
    request = FakeRequest(FakeUser(uuid.uuid4().int))
    outcomes = [workers[n % 2].allow_request(request, view) for n in range(8)]
    assert outcomes == [True] * 5 + [False] * 3


def test_ip_throttle_uses_remote_addr_without_trusted_proxies(settings, rates):
    rates(auth="1/min")
    factory = APIRequestFactory()
    throttle = ScopedIPRateThrottle()
    request = factory.get("/", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert throttle.get_ident(request) == "198.51.100.7"
