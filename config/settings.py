"""Jauge settings: one file, driven by environment variables (listed in .env.example).

Parsing is strict on purpose: a typo in an operator's env file must stop the process with
the variable's name, not silently fall back to a default.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("JAUGE_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value in ("True", "true", "1", "yes"):
        return True
    if value in ("False", "false", "0", "no"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and env_bool("JAUGE_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set")
    # Development fallback only; docker-compose and production set SECRET_KEY.
    SECRET_KEY = "jauge-insecure-development-key"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "campaigns.middleware.LocaleMiddleware",  # Django's, minus Vary on embeds
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'jauge.sqlite3'}")
try:
    _db = dj_database_url.parse(DATABASE_URL)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: web, worker and beat share one file. IMMEDIATE transactions
    # take the write lock up front, so concurrent writers queue instead of failing.
    _db["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
else:
    # Persistent connections: the banner's cost is dominated by connection setup otherwise.
    _db["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
    _db["CONN_HEALTH_CHECKS"] = True
    if _db["ENGINE"] == "django.db.backends.postgresql":
        # A database that is down or unreachable fails a request within seconds (a webhook then
        # answers 503 + Retry-After), instead of hanging on the TCP connect.
        _db.setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 2, minimum=1)
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (shared progress snapshots) and Redis ----------------------------------------
REDIS_URL = env_str("REDIS_URL")
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "jauge")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
# Without a shared cache each process has its own copy: bound how stale it can be.
PROGRESS_CACHE_SECONDS = env_int("PROGRESS_CACHE_SECONDS", 3600 if REDIS_URL else 2, minimum=1)
# Each web process also keeps a snapshot this long (0: off): spares the banner a Redis round trip.
PROGRESS_LOCAL_SECONDS = env_int("PROGRESS_LOCAL_SECONDS", 1)

# --- Celery -----------------------------------------------------------------------------
# Default broker: kombu's filesystem transport, a real broker that needs no server, so
# `make run` starts a real worker and beat on a fresh machine.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # A webhook must never wait on a dead broker: fail fast, the sweeper re-enqueues.
    # (Workers and beat do not give up because of max_retries: 0: it only bounds kombu's
    # default-channel reconnect on publish; their consumers reconnect with Celery's own
    # broker_connection_max_retries (100, growing intervals). socket_timeout stays above kombu's
    # 1 s BRPOP timeout, or an idle worker would see a timeout every poll.
    # tests/test_broker_restart.py restarts the broker under both.)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 1,
        "socket_timeout": 2,
        "max_retries": 0,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "jauge")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless this
# is set; then it closes it only every N tasks, and config/celery.py applies CONN_MAX_AGE and
# the health check in between, as Django does for requests. (No task uses a time limit, the case
# where Celery cannot tell a connection interrupted mid-query from a healthy one.)
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sweep-unprocessed": {"task": "campaigns.tasks.sweep_unprocessed", "schedule": 30.0},
    "refresh-lagging-progress": {"task": "campaigns.tasks.refresh_lagging_progress", "schedule": 30.0},
    "reconcile-totals": {"task": "campaigns.tasks.reconcile_totals", "schedule": 600.0},
    "pledges-expire": {"task": "campaigns.tasks.expire_pledges", "schedule": 300.0},
    "receipts-sweep": {"task": "campaigns.tasks.send_receipts", "schedule": 300.0},
}
# Events still `received` this long after arrival are re-enqueued by the sweeper.
SWEEP_AFTER_SECONDS = env_int("SWEEP_AFTER_SECONDS", 60)
# Beat sends a heartbeat task this often; a worker whose last heartbeat (or task) is older than
# HEARTBEAT_MAX_AGE_SECONDS is stale (worker_health exits 1, /healthz/ready answers 503). With
# many workers sharing the heartbeats, keep the age above 2 × workers × HEARTBEAT_SECONDS.
HEARTBEAT_SECONDS = env_int("HEARTBEAT_SECONDS", 10, minimum=1)
HEARTBEAT_MAX_AGE_SECONDS = env_int("HEARTBEAT_MAX_AGE_SECONDS", 120, minimum=1)
if HEARTBEAT_MAX_AGE_SECONDS <= HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("HEARTBEAT_MAX_AGE_SECONDS must be greater than HEARTBEAT_SECONDS")
# A worker that has run no task for this long while work waits shuts itself down, to be
# replaced by its supervisor (compose's restart policy). 0: never.
WORKER_STALE_EXIT_SECONDS = env_int("WORKER_STALE_EXIT_SECONDS", 600)
if 0 < WORKER_STALE_EXIT_SECONDS <= HEARTBEAT_MAX_AGE_SECONDS:
    raise ImproperlyConfigured("WORKER_STALE_EXIT_SECONDS must be 0 or greater than HEARTBEAT_MAX_AGE_SECONDS")
CELERY_BEAT_SCHEDULE["heartbeat"] = {
    "task": "campaigns.tasks.heartbeat",
    "schedule": float(HEARTBEAT_SECONDS),
    # A heartbeat that waited in a dead worker's queue proves nothing: dropped once expired.
    "options": {"expires": HEARTBEAT_SECONDS * 3},
}
# Celery 5.7.0's consumer can die of an AttributeError while it tears down a broken broker
# connection (see config/worker.py); this subclass keeps it reconnecting.
CELERY_WORKER_CONSUMER = "config.worker:Consumer"

# --- Operations: /metrics ---------------------------------------------------------------
# Refused unless one of these allows the caller: a bearer token, or the client's address in one
# of these networks (REMOTE_ADDR: behind a proxy, the proxy's address).
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters")
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(n, strict=False) for n in env_list("METRICS_ALLOWED_NETWORKS")]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {exc}") from None

# --- Jauge ------------------------------------------------------------------------------
# Empty: /hooks/generic/ refuses everything (make run sets a development secret).
GENERIC_WEBHOOK_SECRET = env_str("GENERIC_WEBHOOK_SECRET")
WEBHOOK_TOLERANCE_SECONDS = 300
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
EMBED_ALLOWED_ORIGINS = env_list("EMBED_ALLOWED_ORIGINS")
PUBLIC_URL = env_str("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Donations (reader page, pledges, providers) -----------------------------------------
# Offered on the donation page, in this order; stripe needs STRIPE_SECRET_KEY, bank_transfer an IBAN.
PAYMENT_PROVIDERS = env_list("PAYMENT_PROVIDERS", "sandbox,stripe,bank_transfer")
_unknown_providers = set(PAYMENT_PROVIDERS) - {"sandbox", "stripe", "bank_transfer"}
if _unknown_providers:
    raise ImproperlyConfigured(f"PAYMENT_PROVIDERS has unknown providers: {', '.join(sorted(_unknown_providers))}")
BANK_TRANSFER_IBAN = env_str("BANK_TRANSFER_IBAN").replace(" ", "").upper()
BANK_TRANSFER_BIC = env_str("BANK_TRANSFER_BIC").replace(" ", "").upper()
BANK_TRANSFER_HOLDER = env_str("BANK_TRANSFER_HOLDER")
if BANK_TRANSFER_IBAN:
    from schwifty import BIC, IBAN
    from schwifty.exceptions import SchwiftyException

    try:
        IBAN(BANK_TRANSFER_IBAN)
        if BANK_TRANSFER_BIC:
            BIC(BANK_TRANSFER_BIC)
    except SchwiftyException as exc:
        raise ImproperlyConfigured(f"BANK_TRANSFER_IBAN/BANK_TRANSFER_BIC: {exc}") from None
    if not BANK_TRANSFER_HOLDER:
        raise ImproperlyConfigured("BANK_TRANSFER_HOLDER must be set with BANK_TRANSFER_IBAN")
# Pending pledges expire after these delays (bank transfers take days to arrive).
PLEDGE_EXPIRY_MINUTES = {
    "sandbox": env_int("PLEDGE_EXPIRY_SANDBOX_MINUTES", 60, minimum=1),
    "stripe": env_int("PLEDGE_EXPIRY_STRIPE_MINUTES", 48 * 60, minimum=1),
    "bank": env_int("PLEDGE_EXPIRY_BANK_DAYS", 30, minimum=1) * 24 * 60,
}
# Pledges per client address on /c/<slug>/donate/ (django-ratelimit syntax: 10/10m, 30/h).
DONATE_RATE_LIMIT = env_str("DONATE_RATE_LIMIT", "10/10m")
# A cache outage must not turn every reader away: the limit is skipped, the gift goes through.
RATELIMIT_FAIL_OPEN = True
# Behind a reverse proxy, the client address is in a header it sets (e.g. HTTP_X_REAL_IP).
RATELIMIT_IP_META_KEY = env_str("RATELIMIT_IP_META_KEY") or None

# --- E-mail (receipts): the console by default, SMTP when EMAIL_HOST is set ----------------
# Receipts go out in batches: the first confirmation of a burst schedules one task this many
# seconds ahead, which sends every receipt due by then over one mail connection.
RECEIPTS_BATCH_SECONDS = env_int("RECEIPTS_BATCH_SECONDS", 2)
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true")
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Jauge <dons@localhost>")

# --- i18n, static -----------------------------------------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
# One catalogue folder per area (locale/<area>/<lang>/LC_MESSAGES/django.po), merged by Django.
LOCALE_PATHS = sorted(path for path in (BASE_DIR / "locale").glob("*") if path.is_dir())
USE_I18N = True
USE_TZ = True
TIME_ZONE = env_str("TIME_ZONE", "Europe/Paris")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "campaigns": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    },
}

# Serve static files straight from the app folders too (no collectstatic needed for `make run`).
WHITENOISE_USE_FINDERS = True
