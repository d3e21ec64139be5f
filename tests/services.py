"""Pytest plugin loaded before Django (`-p tests.services`): chooses the backing services.

- PostgreSQL and Redis on their default loopback ports are used when they answer;
- with REQUIRE_SERVICES=1 (CI) their absence fails the run instead of skipping tests;
- every run gets its own test database name, cache key prefix and Celery queue, so runs
  sharing the machine's servers never see each other's data (nothing is ever flushed).
"""

from __future__ import annotations

import os
import socket

import pytest

RUN_ID = f"{os.getpid()}"
PG_URL = os.environ.get("JAUGE_TEST_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/jauge_{RUN_ID}")
REDIS_URL = os.environ.get("JAUGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


REQUIRE = os.environ.get("REQUIRE_SERVICES", "") in ("1", "true", "True", "yes")
HAVE_POSTGRES = _reachable("127.0.0.1", 5432)
HAVE_REDIS = _reachable("127.0.0.1", 6379)

if REQUIRE and not (HAVE_POSTGRES and HAVE_REDIS):
    missing = [name for name, ok in (("PostgreSQL", HAVE_POSTGRES), ("Redis", HAVE_REDIS)) if not ok]
    raise pytest.UsageError(f"REQUIRE_SERVICES=1 but {', '.join(missing)} not reachable on 127.0.0.1")

if HAVE_POSTGRES:
    os.environ["DATABASE_URL"] = PG_URL
else:
    os.environ["DATABASE_URL"] = "sqlite:///:memory:"
if HAVE_REDIS:
    os.environ["REDIS_URL"] = REDIS_URL
else:
    os.environ.pop("REDIS_URL", None)
os.environ["CACHE_KEY_PREFIX"] = f"jauge-test-{RUN_ID}"
os.environ["CELERY_QUEUE"] = f"jauge-test-{RUN_ID}"
# Tasks go to Redis (a db index of the tests' own, a queue of this run's own); worker tests
# start a real worker on that queue (tests/worker.py). Without Redis: kombu's memory transport.
BROKER_URL = os.environ.get("JAUGE_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ["CELERY_BROKER_URL"] = BROKER_URL if HAVE_REDIS else "memory://"
os.environ["JAUGE_VAR_DIR"] = f"/tmp/jauge-test-{RUN_ID}"
# The tests sign with this secret: whatever the calling shell exported must not leak in.
# The suite runs with DEBUG unset (false): its secrets must be real-looking (32+ characters), or
# the settings refuse to start, here and in every server or worker subprocess the tests start.
os.environ["GENERIC_WEBHOOK_SECRET"] = "test-webhook-secret-4f1d7c2a9b8e6d5c3a1f0e9d"
os.environ["SECRET_KEY"] = "test-secret-key-9c2e7a4b1d8f6e3c5a0b7d9e2f4a6c8e"
os.environ["DONOR_KEY_SECRET"] = "test-donor-key-1a3c5e7f9b2d4f6a8c0e1b3d5f7a9c2e"
# The sandbox is the suite's test checkout (test_sandbox_gate.py turns it off where it matters).
os.environ["JAUGE_SANDBOX"] = "true"
for _name in ("DEBUG", "PAYMENT_PROVIDERS", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "TRUSTED_PROXIES",
              "RATELIMIT_IP_META_KEY", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SENTRY_DSN", "LOG_FORMAT"):
    os.environ.pop(_name, None)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"


def pytest_sessionfinish(session, exitstatus):
    """Drop this run's own broker queue (never anything else on the shared server)."""
    if not HAVE_REDIS:
        return
    try:
        import redis

        client = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=1)
        client.delete(os.environ["CELERY_QUEUE"])
        for key in client.scan_iter(f"_kombu.binding.{os.environ['CELERY_QUEUE']}*"):
            client.delete(key)
    except Exception:
        pass


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="PostgreSQL not reachable on 127.0.0.1:5432")
    skip_redis = pytest.mark.skip(reason="Redis not reachable on 127.0.0.1:6379")
    for item in items:
        if "postgres" in item.keywords and not HAVE_POSTGRES:
            item.add_marker(skip_pg)
        if ("redis" in item.keywords or "worker" in item.keywords) and not HAVE_REDIS:
            item.add_marker(skip_redis)
