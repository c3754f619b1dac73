"""Instructions per value create, counted by valgrind's callgrind: the API against the bare
floor (``bench/floor_views.py``, no middleware), in one run.

A count of instructions does not move with the machine's other load, so it shows small
changes that a throughput run on a shared machine cannot. Each side runs in its own process
under callgrind, serving creates in-process through its WSGI application (no network, no
gunicorn); the database's own work is not counted (it runs in another process).
Per-request figures are the difference between a run of ``--many`` and one of ``--few``
creates, divided by the difference, so start-up and the first requests cancel out.

    .venv/bin/python bench/create_instructions.py --database exante_instr_bench

``--keyed`` adds the API with a unique ``Idempotency-Key`` per create, against the API
without one (docs/idempotency.md).

Needs PostgreSQL (``DATABASE_URL``-style server at ``--server``) and ``valgrind``.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Run inside the measured process: seed, then serve ``BENCH_CREATES`` creates in-process.
CHILD = r"""
import datetime, io, json, os, sys
import django
django.setup()
from entities.models import Organization, User
from metrics.models import MetricDefinition, MetricValue
from rest_framework_simplejwt.tokens import AccessToken
user = User.objects.filter(email="bench@exante.test").first() or User.objects.create_user(
    "bench@exante.test", "bench-pass-123456", is_staff=True)
org = Organization.objects.first() or Organization.objects.create(name="Bench")
MetricDefinition.objects.get_or_create(
    uid="total_ar", defaults={"name": "Total AR", "value_type": "currency"})
MetricValue.objects.all().delete()
token = str(AccessToken.for_user(user))
from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
path = os.environ["BENCH_PATH"].format(org=org.uid)
def create(day):
    date = (datetime.date(2000, 1, 1) + datetime.timedelta(days=day)).isoformat()
    body = json.dumps({"metric_uid": "total_ar", "metric_date": date, "value": "1234.50"}).encode()
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json",
        "HTTP_AUTHORIZATION": "Bearer " + token, "HTTP_HOST": "127.0.0.1"}
    if os.environ.get("BENCH_KEYED"):
        environ["HTTP_IDEMPOTENCY_KEY"] = f"bench-{os.environ['BENCH_CREATES']}-{day}"
    status = []
    b"".join(application(environ, lambda s, h: status.append(s)))
    assert status[0].startswith("201"), status
for day in range(int(os.environ["BENCH_CREATES"])):
    create(day)
"""


def instructions(settings: str, path: str, creates: int, env: dict, *, counted=True) -> int:
    run_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": settings,
        "BENCH_PATH": path,
        "BENCH_CREATES": str(creates),
    }
    if not counted:
        # Seeds the user (a slow password hash) and byte-compiles, so that the two counted
        # runs differ only in their creates.
        subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=run_env, check=True)
        return 0
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    result = subprocess.run(
        [*command, sys.executable, "-c", CHILD],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="exante_instr_bench")
    parser.add_argument("--few", type=int, default=20)
    parser.add_argument("--many", type=int, default=120)
    parser.add_argument(
        "--keyed", action="store_true", help="also the API with an Idempotency-Key per create"
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    subprocess.run(
        ["psql", f"{args.server}/postgres", "-qXc", f"DROP DATABASE IF EXISTS {args.database}"],
        check=True,
    )
    subprocess.run(
        ["psql", f"{args.server}/postgres", "-qXc", f"CREATE DATABASE {args.database}"], check=True
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"{args.server}/{args.database}",
        "API_RATE_USER": "",
        "API_RATE_KEY": "",
        "API_RATE_AUTH": "",
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    sides = {
        "floor": ("bench.floor_settings", "/floor/values/ORGANIZATION/{org}"),
        "api": ("exante.settings.base", "/api/metrics/values/ORGANIZATION/{org}"),
    }
    if args.keyed:
        sides["api+key"] = sides["api"]
    per_request = {}
    for name, (settings, path) in sides.items():
        side_env = {**env, "BENCH_KEYED": "1"} if name == "api+key" else env
        instructions(settings, path, 0, side_env, counted=False)
        few = instructions(settings, path, args.few, side_env)
        many = instructions(settings, path, args.many, side_env)
        per_request[name] = (many - few) / (args.many - args.few)
        print(f"{name:6s} {per_request[name] / 1e6:6.2f} M instructions per create")
    print(f"api/floor {per_request['api'] / per_request['floor']:.2f}× the floor's instructions")
    if args.keyed:
        print(f"api+key/api {per_request['api+key'] / per_request['api']:.2f}× without a key")


if __name__ == "__main__":
    main()
