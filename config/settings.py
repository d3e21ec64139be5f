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

# Secrets that anyone can read (.env.example, the README, the Makefile, earlier test suites): a
# process that signs with one of them lets a reader forge donations or sessions.
PUBLISHED_SECRETS = frozenset({
    "change-me", "change-me-too", "changeme", "secret", "jauge-dev-secret", "jauge-insecure-development-key",
    "jauge-development-donor-key", "test-secret-key", "test-webhook-secret", "bench-secret-key",
    "bench-webhook-secret", "whsec_test_secret", "whsec_…", "sk_test_…",
})
MIN_SECRET_LENGTH = 32


def env_secret(name: str, *, required: bool, development: str = "") -> str:
    """A secret from the environment. With DEBUG=false it must be real: set (when required), not a
    published placeholder, at least MIN_SECRET_LENGTH characters; anything else stops the process."""
    value = env_str(name)
    if DEBUG:
        return value or development
    if not value:
        if required:
            raise ImproperlyConfigured(f"{name} must be set when DEBUG is false (generate one: "
                                       "python -c 'import secrets; print(secrets.token_urlsafe(50))')")
        return ""
    if value.strip().lower() in PUBLISHED_SECRETS:
        raise ImproperlyConfigured(f"{name} is a published placeholder: anyone who read it can sign with it; "
                                   "set a random value")
    if len(value) < MIN_SECRET_LENGTH:
        raise ImproperlyConfigured(f"{name} is too short ({len(value)} characters): use at least "
                                   f"{MIN_SECRET_LENGTH} random characters")
    return value


# Development fallbacks (DEBUG only). JAUGE_REQUIRE_SECRET_KEY is accepted and no longer needed:
# DEBUG=false always requires a real SECRET_KEY.
env_bool("JAUGE_REQUIRE_SECRET_KEY", False)
SECRET_KEY = env_secret("SECRET_KEY", required=True, development="jauge-insecure-development-key")
# Donor keys (one donor per e-mail address) are keyed with their own secret, so rotating
# SECRET_KEY never splits donors. Upgrading: set it to the SECRET_KEY the donations were made with.
DONOR_KEY_SECRET = env_secret("DONOR_KEY_SECRET", required=True, development="jauge-development-donor-key")
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
# The public reads (embeds, progress.json: config/hotpath.py) skip what a cookie-free, shared-
# cacheable GET never needs; their headers stay the same. Middleware added above runs there too
# unless it is listed here.
HOT_PATH_SKIPPED_MIDDLEWARE = {
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "campaigns.middleware.LocaleMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
}
HOT_PATH_MIDDLEWARE = [path for path in MIDDLEWARE if path not in HOT_PATH_SKIPPED_MIDDLEWARE]

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
                "campaigns.context_processors.test_mode",
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
    "tax-receipt-emails": {"task": "campaigns.tasks.send_tax_receipt_emails", "schedule": 900.0},
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
# The sandbox is a test checkout anyone can "pay" with: it exists only in development (DEBUG) or
# when an operator asks for it on a test site (JAUGE_SANDBOX=true, which `make run` sets).
SANDBOX_ENABLED = DEBUG or env_bool("JAUGE_SANDBOX", False)
# Empty: /hooks/generic/ refuses everything (make run sets a development secret). The sandbox
# confirms through it, so a test site (JAUGE_SANDBOX with DEBUG=false) needs a real one.
GENERIC_WEBHOOK_SECRET = env_secret("GENERIC_WEBHOOK_SECRET", required=SANDBOX_ENABLED)
WEBHOOK_TOLERANCE_SECONDS = 300
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
EMBED_ALLOWED_ORIGINS = env_list("EMBED_ALLOWED_ORIGINS")
# Every absolute URL Jauge makes (Stripe's return URLs, share links, e-mails, snippets, the sandbox's
# webhook) starts here, never from the request's Host or scheme (a proxy may have changed both).
PUBLIC_URL = env_str("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
if not PUBLIC_URL.startswith(("http://", "https://")) or "/" in PUBLIC_URL.split("://", 1)[1]:
    raise ImproperlyConfigured(f"PUBLIC_URL must be an origin such as https://dons.example.org, got {PUBLIC_URL!r}")
# --- Donations (reader page, pledges, providers) -----------------------------------------
# Offered on the donation page, in this order; stripe needs STRIPE_SECRET_KEY, bank_transfer an IBAN.
PAYMENT_PROVIDERS = env_list("PAYMENT_PROVIDERS", "sandbox,stripe,bank_transfer" if SANDBOX_ENABLED
                             else "stripe,bank_transfer")
_unknown_providers = set(PAYMENT_PROVIDERS) - {"sandbox", "stripe", "bank_transfer"}
if _unknown_providers:
    raise ImproperlyConfigured(f"PAYMENT_PROVIDERS has unknown providers: {', '.join(sorted(_unknown_providers))}")
if "sandbox" in PAYMENT_PROVIDERS and not SANDBOX_ENABLED:
    raise ImproperlyConfigured("PAYMENT_PROVIDERS offers sandbox, the test checkout whose money is fake, but "
                               "DEBUG and JAUGE_SANDBOX are false: drop it (production) or set JAUGE_SANDBOX=true "
                               "(a test site)")
# Stripe's webhooks confirm its payments: with Stripe enabled, their secret must be real.
_stripe_enabled = "stripe" in PAYMENT_PROVIDERS and bool(STRIPE_SECRET_KEY)
STRIPE_WEBHOOK_SECRET = env_secret("STRIPE_WEBHOOK_SECRET", required=_stripe_enabled)
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
# --- Bank statements ----------------------------------------------------------------------
# A statement file larger than this is refused before it is read or parsed (admin and command).
STATEMENT_MAX_BYTES = env_int("STATEMENT_MAX_BYTES", 20 * 1024 * 1024, minimum=1)
# Uploads above this go to a temporary file instead of memory; the admin view refuses a body
# larger than STATEMENT_MAX_BYTES from its Content-Length before Django reads any of it.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Lines matched per transaction (the campaign's counter is held for one batch at a time).
STATEMENT_MATCH_BATCH = env_int("STATEMENT_MATCH_BATCH", 200, minimum=1)
# Matching tasks sent per import: each claims batches (SKIP LOCKED), so one can decide its batch
# while another holds the campaign's counter to apply its own. Measured: 2 are no faster than 1
# on one campaign (applying, under the counter's lock, is most of the work), hence 1.
STATEMENT_MATCH_TASKS = env_int("STATEMENT_MATCH_TASKS", 1, minimum=1)
# A suggestion (no reference: amount, date, payer name/IBAN) is applied by itself only when it
# scores at least this (0-100) and no other candidate reaches STATEMENT_SUGGEST_MIN_SCORE.
STATEMENT_SUGGEST_AUTO_SCORE = env_int("STATEMENT_SUGGEST_AUTO_SCORE", 90, minimum=1)
STATEMENT_SUGGEST_MIN_SCORE = env_int("STATEMENT_SUGGEST_MIN_SCORE", 50, minimum=1)

# Pledges per client address on /c/<slug>/donate/ (django-ratelimit syntax: 10/10m, 30/h).
DONATE_RATE_LIMIT = env_str("DONATE_RATE_LIMIT", "10/10m")


# The client address (rate limit) is the socket's peer, unless that peer is one of these reverse
# proxies (comma-separated IPs or CIDRs): then CLIENT_IP_HEADER, read right to left past the trusted
# proxies. A header from anyone else is never believed (it would let a bot rotate its address).
def _networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(item, strict=False) for item in env_list(name)]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be comma-separated IP addresses or CIDR networks: {exc}") from None


TRUSTED_PROXIES = _networks("TRUSTED_PROXIES")
CLIENT_IP_HEADER = env_str("CLIENT_IP_HEADER", "X-Forwarded-For")
# Deprecated: RATELIMIT_IP_META_KEY (e.g. HTTP_X_REAL_IP) trusted that header from anyone. It is still
# read as the header's name, but only with TRUSTED_PROXIES saying whom to believe it from.
_legacy_ip_key = env_str("RATELIMIT_IP_META_KEY")
if _legacy_ip_key:
    if not TRUSTED_PROXIES:
        raise ImproperlyConfigured("RATELIMIT_IP_META_KEY is replaced by TRUSTED_PROXIES (the proxies' addresses) "
                                   "and CLIENT_IP_HEADER: a header believed from anyone lets a bot rotate its "
                                   "address; set TRUSTED_PROXIES or remove RATELIMIT_IP_META_KEY")
    if not _legacy_ip_key.startswith("HTTP_"):
        raise ImproperlyConfigured(f"RATELIMIT_IP_META_KEY must name a header (HTTP_…), got {_legacy_ip_key!r}")
    CLIENT_IP_HEADER = _legacy_ip_key.removeprefix("HTTP_").replace("_", "-")
CLIENT_IP_META_KEY = "HTTP_" + CLIENT_IP_HEADER.upper().replace("-", "_")

# --- Money safety (issue #10: verified promises, refund identity, bad input) ---------------
# A bank-transfer pledge counts as pending money only once its donor opens the signed link of
# the e-mail that carries the bank details, within this many days.
PLEDGE_CONFIRM_DAYS = env_int("PLEDGE_CONFIRM_DAYS", 7, minimum=1)
# Unconfirmed bank-transfer pledges allowed per e-mail address and per client address within
# PLEDGE_LIMIT_WINDOW_HOURS; beyond that the form asks the reader to confirm the ones they made.
PLEDGE_UNCONFIRMED_MAX_PER_EMAIL = env_int("PLEDGE_UNCONFIRMED_MAX_PER_EMAIL", 3, minimum=1)
PLEDGE_UNCONFIRMED_MAX_PER_ADDRESS = env_int("PLEDGE_UNCONFIRMED_MAX_PER_ADDRESS", 5, minimum=1)
PLEDGE_LIMIT_WINDOW_HOURS = env_int("PLEDGE_LIMIT_WINDOW_HOURS", 24, minimum=1)
# *Mes dons*: how long the signed link of a receipt e-mail opens the donor's page, and how many
# fresh links one client address may ask for (django-ratelimit syntax).
DONOR_LINK_DAYS = env_int("DONOR_LINK_DAYS", 60, minimum=1)
DONOR_LINK_RATE_LIMIT = env_str("DONOR_LINK_RATE_LIMIT", "5/h")
# An event whose processing raises something unexpected this many times becomes `failed`.
EVENT_MAX_ATTEMPTS = env_int("EVENT_MAX_ATTEMPTS", 5, minimum=1)
# A refund still waiting for its donation's success after this many hours becomes `failed`.
DEFERRED_REFUND_MAX_HOURS = env_int("DEFERRED_REFUND_MAX_HOURS", 72, minimum=1)

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
# How long the link to a French tax receipt in a donor's e-mail opens it (a receipt is needed at
# the next spring's tax return: over a year by default).
TAX_RECEIPT_LINK_DAYS = env_int("TAX_RECEIPT_LINK_DAYS", 400, minimum=1)
# Receipts the yearly run issues per transaction (the year's number sequence is locked for one batch).
TAX_RECEIPTS_BATCH = env_int("TAX_RECEIPTS_BATCH", 500, minimum=1)
# Editors told by e-mail when a campaign reaches one of its milestones (comma-separated; empty: nobody).
MILESTONE_EMAILS = env_list("MILESTONE_EMAILS")

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

# --- HTTPS ------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Production is served over HTTPS: cookies never travel in clear (`make run` is DEBUG, plain http).
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" (only if the proxy sets or strips it).
_proxy_ssl = env_list("SECURE_PROXY_SSL_HEADER")
if _proxy_ssl and (len(_proxy_ssl) != 2 or not _proxy_ssl[0].startswith("HTTP_")):
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be HEADER,value such as HTTP_X_FORWARDED_PROTO,https")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl) if _proxy_ssl else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Orchestrators probe health over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# --- Logs and errors ----------------------------------------------------------------------
# Everything goes to stderr (the container's log): request errors and task failures with their
# traceback, as JSON lines with LOG_FORMAT=json.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}")
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
_console = {"handlers": ["console"], "propagate": False}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "campaigns": {**_console, "level": LOG_LEVEL},
        # 500s with their traceback (Django sends them nowhere but e-mail when DEBUG is false);
        # 4xx are WARNINGs there: left out, bots make plenty.
        "django.request": {**_console, "level": "ERROR"},
        "django.security": {**_console, "level": "WARNING"},
    },
}
# Task failures ("Task … raised unexpected", with the traceback) go through the handlers the
# Celery worker installs on the root logger (stderr); config/celery.py gives them LOG_FORMAT.

# Optional error tracking: no personal data leaves (no cookies, headers with users, IPs, bodies).
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=0,
    )

# Serve static files straight from the app folders too (no collectstatic needed for `make run`).
WHITENOISE_USE_FINDERS = True
