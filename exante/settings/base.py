"""Settings shared by every environment, read from the environment in one place.

Local runs need no configuration at all: the database defaults to an SQLite file under
``var/`` and a secret key is generated once and kept there. ``production`` tightens this
and refuses to start without the values that must not have defaults.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("EXANTE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable; anything but a clear yes/no is an error."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _local_secret_key() -> str:
    """A key generated on first use and kept under var/, so sessions survive restarts."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# A CSRF rejection is answered with the JSON error envelope, like every other error.
CSRF_FAILURE_VIEW = "exante.api.handlers.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "rangefilter",
    "exante.idempotency",
    "entities",
    "metrics",
]

MIDDLEWARE = [
    "exante.api.middleware.RequestIDMiddleware",
    # Outermost after the request id: times and logs every response, 503s included.
    "exante.observability.AccessLogMiddleware",
    # Before anything reads the body or queries: URL length, identifiers, chunked bodies.
    "exante.api.middleware.RequestFramingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "exante.api.middleware.DatabaseUnavailableMiddleware",
    # Sessions, Django's authentication and messages serve the admin only; /api/ requests
    # pass them by (exante/api/site_middleware.py).
    "exante.api.site_middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "exante.api.site_middleware.AuthenticationMiddleware",
    "exante.api.site_middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Whether a request's reads may go to the replica; pins the user of a write after it.
    "exante.db_router.ReadReplicaMiddleware",
    # Innermost: a keyed write's view runs inside the transaction that stores its answer.
    "exante.api.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "exante.urls"
WSGI_APPLICATION = "exante.wsgi.application"
# Paths have no trailing slash; the URL patterns accept one too, so no redirect is needed.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide overrides of third-party templates (the Redoc page).
        "DIRS": [BASE_DIR / "exante" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'exante.sqlite3'}"
if DATABASE_URL.startswith("sqlite"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
    )
}
# PgBouncer in transaction pooling mode between the app and PostgreSQL (docs/scale.md):
# consecutive transactions of one connection may run on different server sessions.
DB_PGBOUNCER = env_bool("DB_PGBOUNCER", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Bounded waits: a database that stops answering turns into a 503, not a hung worker.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": env_int("DB_CONNECT_TIMEOUT", 5),
            # Parameters travel beside the statement instead of being quoted into its text,
            # which is what lets PostgreSQL prepare it.
            "server_side_binding": True,
            # A statement run five times on a connection is prepared and planned once; the
            # create's statement (joins the entity, user, membership and definition) costs
            # PostgreSQL a quarter of its work then (pgbench: 1,970 → 7,420 per second).
            "prepare_threshold": env_int("DB_PREPARE_THRESHOLD", 5) or None,
        }
    )
    if DB_PGBOUNCER:
        # PgBouncer refuses the ``options`` startup parameter (the timeouts then belong on
        # the role: ALTER ROLE … SET statement_timeout), and a prepared statement lives in
        # one server session, which the next transaction may not get.
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
    else:
        DATABASES["default"]["OPTIONS"]["options"] = (
            f"-c statement_timeout={env_int('DB_STATEMENT_TIMEOUT_MS', 30000)}"
            # A request queued behind a migration's table lock gives up (503) instead of
            # holding a worker; 0 (the default) waits up to the statement timeout.
            + f" -c lock_timeout={env_int('DB_LOCK_TIMEOUT_MS', 0)}"
        )
    # Behind PgBouncer in transaction mode a named cursor cannot outlive its transaction.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool(
        "DB_DISABLE_SERVER_SIDE_CURSORS", DB_PGBOUNCER
    )
    # Optional in-process pool (psycopg_pool), for threaded workers (GUNICORN_WORKER_CLASS=
    # gthread): a sync worker serves one request at a time and needs one connection. Django
    # requires CONN_MAX_AGE=0 with a pool; health checks make it test idle connections.
    if env_int("DB_POOL_MAX_SIZE", 0) > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": env_int("DB_POOL_MIN_SIZE", 1),
            "max_size": env_int("DB_POOL_MAX_SIZE", 0),
            # Waiting for a free connection (or for the database) ends as a 503.
            "timeout": env_int("DB_POOL_TIMEOUT", 10),
        }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers proceed while one writer holds the lock; IMMEDIATE avoids the
    # upgrade deadlock SQLite otherwise reports as "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# Concurrent test runs on one PostgreSQL server each need their own test database.
DATABASES["default"].setdefault("TEST", {})
if os.environ.get("EXANTE_TEST_DB_NAME"):
    DATABASES["default"]["TEST"]["NAME"] = os.environ["EXANTE_TEST_DB_NAME"]

# A streaming read replica (docs/scale.md): safe reads go there, unless the request writes,
# its user wrote within REPLICA_PIN_SECONDS, or the replica is down or further behind than
# REPLICA_MAX_LAG_SECONDS (checked at most every REPLICA_CHECK_SECONDS per worker). Writes,
# the admin and management commands always use the primary.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {
        **DATABASES["default"],
        **dj_database_url.parse(
            DATABASE_REPLICA_URL,
            conn_max_age=DATABASES["default"]["CONN_MAX_AGE"],
            conn_health_checks=DATABASES["default"]["CONN_HEALTH_CHECKS"],
        ),
        "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {})),
        # Tests read the replica alias from the test database itself.
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["exante.db_router.ReplicaRouter"]
REPLICA_PIN_SECONDS = env_int("REPLICA_PIN_SECONDS", 10)
REPLICA_MAX_LAG_SECONDS = env_int("REPLICA_MAX_LAG_SECONDS", 5)
REPLICA_CHECK_SECONDS = env_int("REPLICA_CHECK_SECONDS", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "entities.User"

# --- Cache (rate-limit counters are shared by every worker when Redis is configured) --------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "exante",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Request bodies: the JSON parser enforces the limit while reading and answers 413 past
# it; bulk calls take the larger one.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
API_MAX_BULK_BODY_BYTES = env_int("API_MAX_BULK_BODY_BYTES", 16 * 1024 * 1024)
# Path and query of an API URL, in characters; longer is a 414 in the envelope. Keep it
# below the server's request-line limit (gunicorn.conf.py), past which the server answers.
API_MAX_URL_LENGTH = env_int("API_MAX_URL_LENGTH", 4096)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BULK_BODY_BYTES

# --- Django REST framework --------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["exante.api.renderers.EnvelopeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["exante.api.parsers.StrictJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First: claims only ``Bearer ex_live_…``, so the JWT class never sees an API key.
        "entities.api.authentication.ApiKeyAuthentication",
        "exante.api.authentication.BearerJWTAuthentication",
    ],
    # Authenticated, and an API key needs the view's ``api_scope`` (docs/security.md).
    "DEFAULT_PERMISSION_CLASSES": ["exante.api.permissions.ApiScopePermission"],
    "DEFAULT_THROTTLE_CLASSES": [
        "exante.api.throttling.PrincipalRateThrottle",
        "exante.api.throttling.ScopedIPRateThrottle",
    ],
    # Per user (JWT), per API key, and per client IP on /api/auth/*; "" disables one.
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_RATE_USER", "600/min"),
        "api_key": os.environ.get("API_RATE_KEY", "1200/min"),
        "auth": os.environ.get("API_RATE_AUTH", "20/min"),
    },
    # Trusted reverse proxies in front of the app; 0 = use REMOTE_ADDR and ignore
    # X-Forwarded-For, which a client could otherwise forge to dodge per-IP limits.
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0),
    "DEFAULT_PAGINATION_CLASS": "exante.api.pagination.EnvelopePagination",
    "DEFAULT_FILTER_BACKENDS": [
        "exante.api.filters.StrictDjangoFilterBackend",
        "exante.api.sorting.SortFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "exante.api.schema.EnvelopeAutoSchema",
    "EXCEPTION_HANDLER": "exante.api.exceptions.envelope_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": False,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Idempotency-Key (docs/idempotency.md): hours a key and its answer are kept, and seconds a
# request holds its key before a retry may take it over (its worker died). Keep the lock
# time above the longest a request can run (DB_STATEMENT_TIMEOUT_MS, the worker timeout).
IDEMPOTENCY_TTL_HOURS = env_int("IDEMPOTENCY_TTL_HOURS", 24)
IDEMPOTENCY_LOCK_SECONDS = env_int("IDEMPOTENCY_LOCK_SECONDS", 120)

# Days an invitation to an organization stays open before it reads as expired.
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7)

# API keys are stored as HMAC-SHA256 under this secret (docs/security.md). Changing it
# invalidates every key, so it is separate from SECRET_KEY, which may need rotating alone.
API_KEY_SECRET = os.environ.get("API_KEY_SECRET") or SECRET_KEY

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "USER_ID_FIELD": "uid",
    "USER_ID_CLAIM": "user_uid",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY") or SECRET_KEY,
}

SYSTEM_FONTS = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
MONOSPACE_FONTS = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace"
SPECTACULAR_SETTINGS = {
    "TITLE": "Exante Metrics API",
    "DESCRIPTION": (
        "Business KPIs (Total AR Outstanding, DSO, ...) for organizations, their parties and "
        "their users. Every response is wrapped in the envelope "
        "`{status, status_code, message, data}`; errors add `code` and `errors`. "
        "Authenticate with `Authorization: Bearer <JWT or API key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and docs are public: a stale or bad bearer token sent along is ignored
    # (as on /api/auth/*) instead of turning a public page into a 401.
    "SERVE_AUTHENTICATION": [],
    # The docs pages load nothing from another host: assets from the sidecar package, no
    # Swagger validator badge, Redoc in the system's fonts (its page and bundle are
    # exante/templates/drf_spectacular/redoc.html and exante/api/docs.py).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": SYSTEM_FONTS,
                "headings": {"fontFamily": SYSTEM_FONTS},
                "code": {"fontFamily": MONOSPACE_FONTS},
            }
        }
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
    "PREPROCESSING_HOOKS": ["exante.api.schema.strip_optional_trailing_slash"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "exante.api.schema.add_enum_varnames",
    ],
}

# --- Observability: Prometheus text at /metrics (off unless enabled; docs/deploy.md) -------
METRICS_ENDPOINT_ENABLED = env_bool("METRICS_ENDPOINT_ENABLED", False)
# When set, scrapers must send ``Authorization: Bearer <METRICS_TOKEN>``.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# --- Logging: one JSON object per line, each carrying the request id ----------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "exante.api.middleware.RequestIDLogFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # The exception handler logs server errors itself, with the request id.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
