"""gunicorn settings for ``gunicorn -c exante/gunicorn.conf.py exante.wsgi``.

Every value can be overridden from the environment (docs/deploy.md lists them). Signals:
``HUP`` reloads the code with new workers (the app is not preloaded, so it is re-imported),
``TERM`` stops gracefully, letting in-flight requests finish within ``graceful_timeout``.
"""

import os
import shutil
import tempfile

from gunicorn.glogging import Logger


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _cpu_count() -> int:
    # The CPUs this process may run on (a container's cpuset), not the host's total.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"

# Sync workers: each request holds one database connection for its whole life, and the work
# is database-bound, so 2×CPU+1 keeps the CPUs busy while some workers wait on PostgreSQL.
# The cap keeps the connection count (workers × app servers) within max_connections.
workers = _env_int("WEB_CONCURRENCY", min(_cpu_count() * 2 + 1, 12))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = _env_int("GUNICORN_THREADS", 1)

# The worker timeout outlasts the database's own limits (connect + statement timeout), so a
# slow or missing database ends as a 503 from the app rather than a killed worker and a
# dropped connection.
_db_budget = _env_int("DB_CONNECT_TIMEOUT", 5) + _env_int("DB_STATEMENT_TIMEOUT_MS", 30000) // 1000
timeout = _env_int("GUNICORN_TIMEOUT", _db_budget + 15)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Longer than a typical load balancer idle timeout (60 s) would hold a socket the LB already
# dropped; shorter than it avoids the LB reusing a socket we just closed (502s).
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then so slow leaks cannot accumulate; jitter spreads the restarts.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 500)
# Heartbeat files on tmpfs: a worker blocked on a disk-backed /tmp would look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# The largest request line gunicorn allows (its default is 4094): URLs up to it reach the
# app, which answers a URL over API_MAX_URL_LENGTH with a 414 in the JSON envelope. Only a
# request line past this limit gets gunicorn's own plain 414.
limit_request_line = 8190
# Trust X-Forwarded-* only from the load balancer's addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Several servers on one host (tests, benchmarks, blue/green) must not fight over one socket.
control_socket_disable = os.environ.get("GUNICORN_CONTROL_SOCKET", "") == ""
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]

# --- Logging: JSON lines, like the application's own -------------------------------------
# The app logs one line per request itself (exante.observability.AccessLogMiddleware, with
# the principal and route name), so gunicorn's access log is off unless asked for; it adds
# requests that never reached Django. Neither ever carries headers, bodies or query strings.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "error": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
    },
    # Django's LOGGING replaces the root logger in each worker; this covers the master.
    "root": {"level": "INFO", "handlers": ["error"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["error"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
}


class JSONAccessLogger(Logger):
    """gunicorn's logger with the access line as structured fields.

    Only the method, path (no query string), status, size, duration, client address and the
    request id are written: never the Authorization header or any body.
    """

    def access(self, resp, req, environ, request_time):
        if not self.cfg.accesslog:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        request_id = next(
            (value for key, value in resp.headers if key.lower() == "x-request-id"), "-"
        )
        self.access_log.info(
            "access",
            extra={
                "request_id": request_id,
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": int(status),
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 2),
                "remote_addr": environ.get("REMOTE_ADDR"),
            },
        )


logger_class = JSONAccessLogger

# --- Prometheus across worker processes ----------------------------------------------------
# Each worker counts in its own memory; with PROMETHEUS_MULTIPROC_DIR set, prometheus-client
# writes samples to files there and /metrics sums them. Set it here, in the master, so every
# worker inherits it before it imports prometheus_client. An operator-given directory is
# emptied at start (stale files from a previous run would be added to the new counts).
# A reload (HUP) re-reads this file with the variable already set; the marker remembers
# that the directory is ours to delete at exit.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="exante-prometheus-")
    os.environ["EXANTE_PROMETHEUS_DIR_OWNED"] = "1"
_multiproc_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    os.makedirs(_multiproc_dir, exist_ok=True)
    for name in os.listdir(_multiproc_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(_multiproc_dir, name))


def child_exit(server, worker):
    # A dead worker's live gauges must not be summed any more; its counters stay.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get("EXANTE_PROMETHEUS_DIR_OWNED"):
        shutil.rmtree(_multiproc_dir, ignore_errors=True)
