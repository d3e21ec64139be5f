"""Test money never reaches a real total: the sandbox exists only with DEBUG or JAUGE_SANDBOX=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from campaigns import tasks
from campaigns.models import CampaignTotal, Donation, PaymentEvent
from campaigns.services import pledges

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "-production-secret-key-for-tests-0123456789",
    "DONOR_KEY_SECRET": "d" * 20 + "-production-donor-key-for-tests",
}


def django_process(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("JAUGE_SANDBOX", "PAYMENT_PROVIDERS")}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run([sys.executable, "-c", f"import django; django.setup()\n{code}"], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=60)

FORM = {"amount": "25", "frequency": "once", "name": "Anonyme", "email": "a@example.org", "provider": "sandbox"}


@pytest.fixture
def sandbox_off(settings):
    settings.DEBUG = False
    settings.SANDBOX_ENABLED = False
    settings.PAYMENT_PROVIDERS = ["stripe", "bank_transfer"]
    # If anything still tried to post the sandbox's webhook, it would fail loudly here.
    settings.PUBLIC_URL = "http://127.0.0.1:9"


@pytest.fixture
def sandbox_on(settings):
    settings.DEBUG = False
    settings.SANDBOX_ENABLED = True
    settings.PAYMENT_PROVIDERS = ["sandbox", "bank_transfer"]
    settings.DONATE_RATE_LIMIT = "1000/m"


def test_production_defaults_offer_no_sandbox():
    result = django_process("from django.conf import settings; print(settings.PAYMENT_PROVIDERS)", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "sandbox" not in result.stdout
    assert "stripe" in result.stdout


def test_naming_sandbox_in_production_stops_the_process_naming_the_variable():
    result = django_process("", PAYMENT_PROVIDERS="sandbox,bank_transfer", **PRODUCTION)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "PAYMENT_PROVIDERS" in result.stderr
    assert "JAUGE_SANDBOX" in result.stderr


def test_a_test_site_needs_a_real_webhook_secret_for_the_sandbox_to_sign_with():
    env = {key: value for key, value in os.environ.items() if key != "GENERIC_WEBHOOK_SECRET"}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                            env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "JAUGE_SANDBOX": "true",
                                 **PRODUCTION}, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "GENERIC_WEBHOOK_SECRET" in result.stderr


def test_a_test_site_with_debug_false_warns_loudly_at_start():
    result = django_process("", JAUGE_SANDBOX="true", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "JAUGE_SANDBOX=true with DEBUG=false" in result.stderr
    assert "fake money" in result.stderr


def test_an_anonymous_sandbox_confirm_with_debug_false_moves_no_total(client, campaign, sandbox_on, settings):
    # A pledge made while the sandbox was on (a test site turned production, or a forged reference).
    response = client.post("/c/test-campaign/donate/", {**FORM, "amount": "100"})
    assert response.status_code == 302
    donation = Donation.objects.get()
    checkout = f"/c/test-campaign/checkout/{donation.reference}/"
    assert response["Location"] == checkout
    assert client.get(checkout).status_code == 200  # the sandbox works while it is on

    settings.SANDBOX_ENABLED = False
    settings.PAYMENT_PROVIDERS = ["stripe", "bank_transfer"]
    settings.PUBLIC_URL = "http://127.0.0.1:9"
    assert client.get(checkout).status_code == 404
    assert client.post(checkout, {"decision": "confirm"}).status_code == 404
    # A decision queued before the switch reaches a worker: it sends nothing.
    tasks.sandbox_webhook_send.apply(args=(donation.pk, "confirm")).get()
    assert not PaymentEvent.objects.exists()
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PENDING
    assert CampaignTotal.objects.get(campaign=campaign).total_minor == 0


def test_without_the_sandbox_the_form_neither_offers_nor_accepts_it(client, campaign, sandbox_off):
    page = client.get("/c/test-campaign/").content.decode()
    assert 'value="sandbox"' not in page
    response = client.post("/c/test-campaign/donate/", FORM)
    assert response.status_code == 400
    assert not Donation.objects.exists()


def test_hooks_sandbox_is_not_found_without_the_sandbox(client, sandbox_off):
    assert client.post("/hooks/sandbox/", b"{}", content_type="application/json").status_code == 404


def test_an_existing_sandbox_pledge_checkout_is_not_found_without_the_sandbox(client, campaign, sandbox_off):
    donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500)
    assert client.get(f"/c/test-campaign/checkout/{donation.reference}/").status_code == 404


def test_with_the_sandbox_on_in_production_every_page_and_banner_says_test_mode(client, campaign, sandbox_on):
    donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500)
    for url in ("/c/test-campaign/", f"/c/test-campaign/checkout/{donation.reference}/",
                f"/c/test-campaign/merci/{donation.reference}/", "/embed/test-campaign/",
                "/embed/test-campaign/frame/", "/embed/test-campaign.svg"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "MODE TEST" in response.content.decode(), url


def test_without_the_sandbox_no_page_or_banner_says_test_mode(client, campaign, sandbox_off):
    for url in ("/c/test-campaign/", "/embed/test-campaign/", "/embed/test-campaign/frame/",
                "/embed/test-campaign.svg"):
        assert "MODE TEST" not in client.get(url).content.decode(), url


def test_the_banner_of_a_test_site_has_its_own_etag(client, campaign, sandbox_on, settings):
    """A shared cache must not keep serving the MODE TEST banner once the sandbox is off (or back)."""
    test_etag = client.get("/embed/test-campaign/")["ETag"]
    settings.SANDBOX_ENABLED = False
    settings.PAYMENT_PROVIDERS = ["bank_transfer"]
    response = client.get("/embed/test-campaign/", HTTP_IF_NONE_MATCH=test_etag)
    assert response.status_code == 200
    assert "MODE TEST" not in response.content.decode()
