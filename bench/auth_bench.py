"""Cost of authenticating a request: API key vs JWT, and why keys use HMAC, not a password
hash. Prints figures as ratios against a baseline measured in the same run.

    .venv/bin/python bench/auth_bench.py [--requests 2000]

Runs in-process on a throwaway SQLite database under a temporary directory (nothing to
start, no network). Figures:

- the per-call cost of HMAC-SHA256 (what keys use) vs Django's default password hasher
  (PBKDF2), on one key: the price a slow hash would add to every API-key request;
- requests per second of ``GET /api/metrics`` authenticated with a JWT (baseline) and with an
  API key, with rate limiting on (local-memory cache).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(function, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    var = tempfile.mkdtemp(prefix="exante-auth-bench-")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "exante.settings.base",
            "EXANTE_VAR_DIR": var,
            "DATABASE_URL": f"sqlite:///{var}/bench.sqlite3",
            "REDIS_URL": "",
            "API_RATE_USER": "1000000/min",
            "API_RATE_KEY": "1000000/min",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import AccessToken

    from entities.models import Membership, Organization, User, hash_api_key
    from entities.services import api_key_create

    call_command("migrate", verbosity=0)
    organization = Organization.objects.create(name="Bench")
    user = User.objects.create_user("bench@example.com", "bench-password-123")
    Membership.objects.create(user=user, organization=organization, role="editor")
    _, raw = api_key_create(user=user, organization=organization, name="bench")

    hmac_cost = timed(lambda: hash_api_key(raw), 20000)
    pbkdf2_cost = timed(lambda: make_password(raw), 3)
    print(f"HMAC-SHA256 per key check:   {hmac_cost * 1e6:10.1f} µs")
    print(f"PBKDF2 (Django default):     {pbkdf2_cost * 1e6:10.1f} µs")
    print(f"  a password hash would cost {pbkdf2_cost / hmac_cost:,.0f}x more per request")

    jwt_client, key_client = APIClient(), APIClient()
    jwt_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    key_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for client in (jwt_client, key_client):  # warm up (and record last_used_at once)
        for _ in range(50):
            assert client.get("/api/metrics").status_code == 200

    # Alternating rounds, best of each: the machine may be busy with other work, and the
    # best round is the one least disturbed by it.
    rounds, best = 7, {"jwt": 0.0, "key": 0.0}
    for _ in range(rounds):
        for name, client in (("jwt", jwt_client), ("key", key_client)):
            per_request = timed(lambda c=client: c.get("/api/metrics"), args.requests // rounds)
            best[name] = max(best[name], 1.0 / per_request)
    jwt_rate, key_rate = best["jwt"], best["key"]
    print(f"GET /api/metrics with a JWT:     {jwt_rate:8.0f} req/s (baseline)")
    print(f"GET /api/metrics with an API key:{key_rate:8.0f} req/s ({key_rate / jwt_rate:.2f}x)")


if __name__ == "__main__":
    main()
