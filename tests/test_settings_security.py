"""Secrets are real or the process does not start; HTTPS settings come from the environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from campaigns.services.ledger import donor_key_for
from tests.test_settings import ROOT

SECRET = "s3cr3t-" + "a" * 57  # 64 characters, as `secrets.token_urlsafe(48)` gives
DONOR_SECRET = "donor-" + "b" * 40
# README's "Production settings" (a test keeps them honest: check --deploy prints nothing).
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": SECRET,
    "DONOR_KEY_SECRET": DONOR_SECRET,
    "ALLOWED_HOSTS": "dons.example.org",
    "PUBLIC_URL": "https://dons.example.org",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}
# Whatever the suite (tests/services.py) or the calling shell set must not leak into these processes.
_DROPPED = ("SECRET_KEY", "DONOR_KEY_SECRET", "GENERIC_WEBHOOK_SECRET", "JAUGE_SANDBOX", "DEBUG",
            "PAYMENT_PROVIDERS", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET",
            "DJANGO_ALLOW_ASYNC_UNSAFE")  # set by the browser tests' fixture


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in _DROPPED}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def _refused(result: subprocess.CompletedProcess, name: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


# Every secret-looking value published in .env.example, the README, the Makefile or earlier tests.
PLACEHOLDERS = ["change-me", "change-me-too", "jauge-dev-secret", "jauge-insecure-development-key",
                "test-secret-key", "test-webhook-secret", "CHANGE-ME", "short-but-random-Xq9"]


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_check_fails_on_a_placeholder_secret_key_naming_it(value):
    _refused(manage("check", **{**PRODUCTION, "SECRET_KEY": value}), "SECRET_KEY")


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_check_fails_on_a_placeholder_webhook_secret_naming_it(value):
    _refused(manage("check", **PRODUCTION, GENERIC_WEBHOOK_SECRET=value), "GENERIC_WEBHOOK_SECRET")


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_check_fails_on_a_placeholder_donor_key_secret_naming_it(value):
    _refused(manage("check", **{**PRODUCTION, "DONOR_KEY_SECRET": value}), "DONOR_KEY_SECRET")


@pytest.mark.parametrize("name", ["SECRET_KEY", "DONOR_KEY_SECRET"])
def test_a_missing_secret_stops_production_even_without_jauge_require_secret_key(name):
    env = {key: value for key, value in PRODUCTION.items() if key != name}
    _refused(manage("check", **env), name)


def test_the_placeholders_shipped_in_env_example_are_refused():
    """.env.example ships empty secrets: copying it as is cannot start production."""
    values = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#"))
    for name in ("SECRET_KEY", "DONOR_KEY_SECRET", "GENERIC_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET"):
        assert values[name] == "", name
    _refused(manage("check", **{**values, "DATABASE_URL": "sqlite:///:memory:", "REDIS_URL": "",
                                 "CELERY_BROKER_URL": "memory://"}), "SECRET_KEY")


def test_stripe_enabled_with_its_keys_needs_a_real_webhook_secret():
    stripe = {**PRODUCTION, "PAYMENT_PROVIDERS": "stripe", "STRIPE_SECRET_KEY": "sk_live_x"}
    _refused(manage("check", **stripe), "STRIPE_WEBHOOK_SECRET")
    _refused(manage("check", **stripe, STRIPE_WEBHOOK_SECRET="whsec_…"), "STRIPE_WEBHOOK_SECRET")
    assert manage("check", **stripe, STRIPE_WEBHOOK_SECRET="whsec_" + "c" * 32).returncode == 0


def test_debug_keeps_development_fallbacks_and_accepts_jauge_require_secret_key():
    result = manage("check", DEBUG="true", JAUGE_REQUIRE_SECRET_KEY="true")
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_with_the_documented_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout and "WARNING" not in result.stderr


def test_production_cookies_are_secure_and_debug_ones_are_not():
    code = ("from django.conf import settings; print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, "
            "settings.SECURE_PROXY_SSL_HEADER)")
    result = manage("shell", "-c", code, **PRODUCTION)
    assert result.stdout.strip().splitlines()[-1] == "True True ('HTTP_X_FORWARDED_PROTO', 'https')", result.stderr
    assert manage("shell", "-c", code, DEBUG="true").stdout.strip().splitlines()[-1] == "False False None"


@pytest.mark.parametrize(("name", "value"), [("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto"),
                                             ("SECURE_HSTS_SECONDS", "a year"), ("PUBLIC_URL", "dons.example.org"),
                                             ("LOG_FORMAT", "xml"), ("SECURE_SSL_REDIRECT", "maybe")])
def test_a_bad_https_or_log_setting_stops_the_process_naming_it(name, value):
    _refused(manage("check", **{**PRODUCTION, name: value}), name)


def test_health_checks_answer_over_http_while_everything_else_redirects(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/c/nulle-part/").status_code == 301
    assert client.get("/healthz").status_code in (200, 503)  # answered, not redirected


def test_donor_keys_do_not_move_when_secret_key_rotates(settings):
    settings.DONOR_KEY_SECRET = DONOR_SECRET
    settings.SECRET_KEY = SECRET
    before = donor_key_for(email="Marie@Example.org")
    settings.SECRET_KEY = "rotated-" + "z" * 56
    assert donor_key_for(email="marie@example.org") == before
    settings.DONOR_KEY_SECRET = "another-" + "y" * 40
    assert donor_key_for(email="marie@example.org") != before
