"""The database goes away under a real server and comes back (503, not 500).

A throwaway PostgreSQL cluster (initdb into a temp dir, a free port in 18530-18559) and a
gunicorn server pointed at it are started by this module; the shared PostgreSQL server is
never touched. Two servers are tried: sync workers with persistent connections (the
default) and threaded workers sharing a psycopg pool (``DB_POOL_MAX_SIZE``). Requests are
held *inside* the database by a table lock, then the database is stopped (fast shutdown,
then in a second round an immediate one, as after a crash):

* every request, in flight or new, answers within a bound derived from the configured
  connect and statement timeouts (the HTTP client gives up past it, which fails the test)
  with 503 ``service_unavailable`` and ``Retry-After``; authentication by JWT or API key,
  which reads the database, is a 503 too, never a 401; ``/readyz`` is 503, ``/healthz``
  200;
* no write that was answered 503 left a row, whole or partial (a bulk call included);
* after the database is started again the same gunicorn master, never restarted, serves
  reads and writes again from every worker.

Runs on the PostgreSQL pass of the suite only (it needs ``initdb``/``pg_ctl`` from
``/usr/lib/postgresql/*/bin`` and takes about a minute; the SQLite pass skips it with the
reason).
As root, the cluster runs as the ``postgres`` user through ``runuser``.
"""

import contextlib
import glob
import http.client
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent.parent
CONNECT_TIMEOUT_S = 2
STATEMENT_TIMEOUT_MS = 15000
WORKERS = 4
#: No request may take longer than this: the database's own limits plus scheduling slack.
#: The HTTP client gives up at this point, and a request that has not answered fails.
ANSWER_BOUND_S = CONNECT_TIMEOUT_S + STATEMENT_TIMEOUT_MS / 1000 + 10
PASSWORD = "fault-test-password-1"


def _free_port(first: int, last: int) -> int:
    for port in range(first, last + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {first}-{last}")


def _pg_bin() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    return Path(candidates[-1]).parent if candidates else None


# --- The throwaway cluster --------------------------------------------------------------


class Cluster:
    """A private PostgreSQL instance in a temp dir, run as ``postgres`` when we are root."""

    def __init__(self, bindir: Path, directory: Path, port: int, as_postgres: bool):
        self.bindir = bindir
        self.directory = directory
        self.data = directory / "data"
        self.port = port
        self.prefix = ["runuser", "-u", "postgres", "--"] if as_postgres else []

    def _run(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            [*self.prefix, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            log = self.directory / "postgres.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {result.stderr}{result.stdout}\n{tail}")

    def init(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=40 -c max_prepared_transactions=4"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "start",
            "-w",
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "postgres.log"),
            "-o",
            options,
        )

    def stop(self, mode: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data))

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )


@pytest.fixture(scope="module")
def cluster():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (PostgreSQL pass)")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
    as_postgres = os.geteuid() == 0
    if as_postgres:
        if shutil.which("runuser") is None:
            pytest.skip("running as root but runuser is not available to drop to postgres")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the cluster")
    # Not pytest's tmp_path: its parents are private to root, and postgres must reach it.
    directory = Path(tempfile.mkdtemp(prefix="exante-dbfaults-"))
    if as_postgres:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    instance = Cluster(bindir, directory, _free_port(18530, 18559), as_postgres)
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        with contextlib.suppress(Exception):
            instance.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


# --- The server under test --------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict | None
    label: str = ""

    @property
    def code(self) -> str | None:
        return (self.body or {}).get("code")


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log_path: Path
    dbname: str
    jwt: str = ""
    api_key: str = ""
    organization_uid: str = ""
    metric_uid: str = "fault_count"
    extra: dict = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        token: str | None = None,
        label: str = "",
    ) -> Answer:
        """One HTTP request; a request that does not answer within the bound raises."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=ANSWER_BOUND_S)
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = {"unparsed": raw[:500].decode(errors="replace")}
        return Answer(response.status, dict(response.getheaders()), parsed, label)


#: How the server under test holds its connections: sync workers each keeping one
#: persistent connection (the default), or threaded workers sharing a psycopg pool.
VARIANTS = {
    "sync-persistent": {"DB_CONN_MAX_AGE": "600", "WEB_CONCURRENCY": str(WORKERS)},
    "threads-pool": {
        "GUNICORN_WORKER_CLASS": "gthread",
        "GUNICORN_THREADS": str(WORKERS),
        "WEB_CONCURRENCY": "1",
        "DB_POOL_MIN_SIZE": str(WORKERS),
        "DB_POOL_MAX_SIZE": str(WORKERS),
        "DB_POOL_TIMEOUT": str(CONNECT_TIMEOUT_S),
    },
}


def _server_env(cluster: Cluster, dbname: str, var_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "DB_", "EXANTE_", "API_RATE", "DJANGO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="exante.settings.base",
        DATABASE_URL=cluster.url(dbname),
        DB_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT_S),
        DB_STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS),
        EXANTE_VAR_DIR=str(var_dir),
        SECRET_KEY="db-fault-test-" + uuid.uuid4().hex,
        API_RATE_USER="",
        API_RATE_KEY="",
        API_RATE_AUTH="",
        DJANGO_SUPERUSER_EMAIL="faults@exante.test",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
    )
    env.pop("REDIS_URL", None)
    return env


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def server(request, cluster):
    # Persistent connections and pooled ones are both the hard case: the outage breaks
    # connections the server holds, which must be replaced, not reused, afterwards.
    variant = request.param
    dbname = f"exante_faults_{variant.replace('-', '_')}"
    with cluster.connect("postgres") as conn:
        conn.execute(f"CREATE DATABASE {dbname}")
    var_dir = cluster.directory / variant
    env = {**_server_env(cluster, dbname, var_dir), **VARIANTS[variant]}
    python = sys.executable
    for args in (["migrate", "--noinput", "-v0"], ["createsuperuser", "--noinput"]):
        subprocess.run(
            [python, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
        )
    port = _free_port(18560, 18589)
    log_path = cluster.directory / f"gunicorn-{variant}.log"
    gunicorn = Path(python).parent / "gunicorn"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(gunicorn), "-c", "exante/gunicorn.conf.py", "exante.wsgi"],
            cwd=ROOT,
            env={
                **env,
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "GUNICORN_TIMEOUT": "60",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    instance = Server(port, process, log_path, dbname)
    try:
        _wait_until(lambda: instance.request("GET", "/readyz").status == 200, 30, "server up")
        _prepare(instance)
        yield instance
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(OSError):
            if predicate():
                return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for: {what() if callable(what) else what}")
        time.sleep(0.25)


def _prepare(server: Server) -> None:
    """Log in, then create an organization, a metric and an API key through the API."""
    login = server.request(
        "POST", "/api/auth/token", {"email": "faults@exante.test", "password": PASSWORD}
    )
    assert login.status == 200, login
    server.jwt = login.body["data"]["access"]
    org = server.request("POST", "/api/organizations", {"name": "Fault Org"}, token=server.jwt)
    assert org.status == 201, org
    server.organization_uid = org.body["data"]["uid"]
    metric = server.request(
        "POST",
        "/api/metrics",
        {"uid": server.metric_uid, "name": "Fault count", "value_type": "count"},
        token=server.jwt,
    )
    assert metric.status == 201, metric
    key = server.request(
        "POST",
        "/api/api-keys",
        {"name": "fault test", "organization_uid": server.organization_uid},
        token=server.jwt,
    )
    assert key.status == 201, key
    server.api_key = key.body["data"]["key"]


# --- Requests used in the scenario -------------------------------------------------------


def _values_path(server: Server) -> str:
    return f"/api/metrics/values/ORGANIZATION/{server.organization_uid}"


def _create(server: Server, day: str, *, token: str | None = None, label: str = "") -> Answer:
    return server.request(
        "POST",
        _values_path(server),
        {"metric_uid": server.metric_uid, "metric_date": day, "value": 7},
        token=token or server.jwt,
        label=label or f"create {day}",
    )


def _bulk(server: Server, days: list[str], label: str) -> Answer:
    items = [
        {
            "context_type": "ORGANIZATION",
            "entity_uid": server.organization_uid,
            "metric_uid": server.metric_uid,
            "metric_date": day,
            "value": 1,
        }
        for day in days
    ]
    return server.request(
        "POST",
        "/api/metrics/values/bulk",
        {"on_conflict": "error", "items": items},
        token=server.jwt,
        label=label,
    )


def _list(server: Server, *, token: str | None = None, label: str = "list") -> Answer:
    return server.request(
        "GET",
        f"{_values_path(server)}?start_date=1990-01-01&end_date=2100-12-31&per_page=1000",
        token=token or server.jwt,
        label=label,
    )


def _rows_on(cluster: Cluster, server: Server, days: list[str]) -> list[str]:
    with cluster.connect(server.dbname) as conn:
        rows = conn.execute(
            "SELECT metric_date::text FROM metrics_metricvalue WHERE metric_date::text = ANY(%s)",
            (days,),
        ).fetchall()
    return sorted(row[0] for row in rows)


def _in_parallel(calls: list) -> tuple[list[threading.Thread], list]:
    results: list = [None] * len(calls)

    def run(index: int, call) -> None:
        try:
            results[index] = call()
        except Exception as exc:  # a timeout or a dropped connection: reported as such
            results[index] = exc

    threads = [
        threading.Thread(target=run, args=(index, call), daemon=True)
        for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    return threads, results


def _assert_unavailable(answer) -> None:
    assert isinstance(answer, Answer), f"no answer within {ANSWER_BOUND_S}s: {answer!r}"
    assert answer.status == 503, answer
    assert answer.code == "service_unavailable", answer
    assert answer.body["status_code"] == 503, answer
    assert int(answer.headers["Retry-After"]) > 0, answer


def _activity(conn) -> list:
    return conn.execute(
        "SELECT pid, state, wait_event_type, wait_event, left(query, 60) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()


def _lock_waiters(conn) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()"
    ).fetchone()[0]


def _lock_values_table(cluster: Cluster, server: Server, gid: str) -> None:
    """An exclusive lock on the values table, held by a prepared transaction.

    Unlike a session's lock it is not released when a shutdown ends the sessions, so no
    waiting write can slip through to a commit between its locker's exit and its own; it
    survives a restart too, until ``_unlock``.
    """
    with cluster.connect(server.dbname) as locker:
        locker.autocommit = False
        locker.execute("LOCK TABLE metrics_metricvalue IN ACCESS EXCLUSIVE MODE")
        locker.execute(f"PREPARE TRANSACTION '{gid}'")


def _unlock(cluster: Cluster, server: Server, gid: str) -> None:
    with cluster.connect(server.dbname) as admin:
        admin.execute(f"ROLLBACK PREPARED '{gid}'")


def _all_waiting(cluster: Cluster, server: Server, answers: list, seconds: float) -> str:
    """Wait until every worker's request waits on the lock; "" when they do, else why not."""
    with cluster.connect(server.dbname) as watcher:
        deadline = time.monotonic() + seconds
        while _lock_waiters(watcher) < WORKERS:
            if time.monotonic() > deadline:
                statuses = [getattr(answer, "status", answer) for answer in answers]
                return f"database sessions {_activity(watcher)}, answers so far {statuses}"
            time.sleep(0.2)
    return ""


def _every_worker_in_the_database(cluster: Cluster, server: Server, tag: str) -> bool:
    """True when as many reads as there are workers are inside the database at once.

    That is the proof that every worker (or pooled connection) is back, and not just one
    that answers all the sequential requests.
    """
    gid = f"exante_fault_barrier_{tag}_{uuid.uuid4().hex[:8]}"
    _lock_values_table(cluster, server, gid)
    try:
        threads, reads = _in_parallel(
            [
                lambda i=i: _list(server, token=(server.jwt, server.api_key)[i % 2])
                for i in range(WORKERS)
            ]
        )
        all_inside = _all_waiting(cluster, server, reads, 10) == ""
    finally:
        _unlock(cluster, server, gid)
    for thread in threads:
        thread.join(ANSWER_BOUND_S + 5)
    return all_inside and [getattr(read, "status", read) for read in reads] == [200] * WORKERS


# --- The scenario ---------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "year"), [("fast", 2001), ("immediate", 2002)])
def test_database_outage_is_503_within_bound_and_the_same_server_recovers(
    cluster, server, mode, year
):
    pid = server.process.pid
    days = [f"{year}-01-{day:02d}" for day in range(1, 29)]
    in_flight_days, outage_days, bulk_days = days[:2], days[2:4], days[10:28]

    # Baseline: reads and writes work, with either credential, from every worker.
    assert _create(server, f"{year}-02-01").status == 201
    assert _list(server, token=server.api_key).status == 200
    _wait_until(
        lambda: _every_worker_in_the_database(cluster, server, f"before_{mode}"),
        90,
        "every worker inside the database before the outage",
    )

    # Hold requests inside the database, mid-transaction, when it goes away.
    gid = f"exante_fault_lock_{mode}"
    _lock_values_table(cluster, server, gid)
    threads, in_flight = _in_parallel(
        [
            lambda: _create(server, in_flight_days[0]),
            lambda: _create(server, in_flight_days[1], token=server.api_key),
            lambda: _bulk(server, bulk_days, "bulk"),
            lambda: _list(server),
        ]
    )
    not_waiting = _all_waiting(cluster, server, in_flight, 30)
    assert not not_waiting, f"{WORKERS} requests should wait on the lock: {not_waiting}"
    cluster.stop(mode)
    for thread in threads:
        thread.join(ANSWER_BOUND_S + 5)
    for answer in in_flight:
        _assert_unavailable(answer)

    # While it is down: every route that needs the database says so, auth included.
    assert server.request("GET", "/healthz").status == 200
    _assert_unavailable(server.request("GET", "/readyz"))
    _assert_unavailable(server.request("GET", "/api/metrics", token=server.jwt))
    _assert_unavailable(server.request("GET", "/api/metrics", token=server.api_key))
    _assert_unavailable(
        server.request(
            "POST", "/api/auth/token", {"email": "faults@exante.test", "password": PASSWORD}
        )
    )
    _assert_unavailable(_create(server, outage_days[0]))
    _assert_unavailable(_create(server, outage_days[1], token=server.api_key))

    cluster.start()
    _unlock(cluster, server, gid)  # the prepared transaction survived the restart

    # Nothing that was answered 503 was written, not even part of the bulk call.
    assert _rows_on(cluster, server, in_flight_days + outage_days + bulk_days) == []

    # Every worker serves again, inside the database at the same time. Persistent
    # connections are replaced on the next request; a pool that failed to reconnect during
    # the outage retries with exponential backoff, so it may take up to about twice as
    # long as the outage lasted to be whole again (docs/deploy.md).
    _wait_until(
        lambda: _every_worker_in_the_database(cluster, server, f"after_{mode}"),
        90,
        "every worker inside the database again",
    )
    assert server.request("GET", "/readyz").status == 200
    assert _create(server, outage_days[0]).status == 201
    assert _bulk(server, bulk_days, "bulk again").status == 200
    written = [outage_days[0], *bulk_days]
    assert _rows_on(cluster, server, written) == sorted(written)

    # Recovered without a restart: the same master process, still running.
    assert server.process.poll() is None
    assert server.process.pid == pid
