from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.providers.generic import SIGNATURE_HEADER, sign
from campaigns.services.campaigns import campaign_upsert

WEBHOOK_SECRET = "test-webhook-secret-4f1d7c2a9b8e6d5c3a1f0e9d"  # tests/services.py


@pytest.fixture(autouse=True)
def _clean_cache():
    # Our own key prefix only: never flush the shared server.
    yield
    from campaigns.selectors import progress_local_forget

    progress_local_forget()
    cache.clear() if cache.__class__.__name__ == "LocMemCache" else _delete_own_keys()


def _delete_own_keys() -> None:
    from django.conf import settings

    try:
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(f"{settings.CACHE_KEY_PREFIX}:*"):
            client.delete(key)
    except Exception:
        pass


@pytest.fixture
def campaign(db) -> Campaign:
    now = timezone.now()
    campaign, _ = campaign_upsert(
        slug="test-campaign",
        defaults={
            "title": "Campagne de test",
            "goal_minor": 1_000_000,
            "currency": "EUR",
            "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=29),
            "status": Campaign.Status.ACTIVE,
        },
    )
    return campaign


def webhook_body(
    *,
    event_id: str,
    type: str = "donation.succeeded",
    donation_id: str = "don_1",
    campaign: str = "test-campaign",
    amount_minor=2500,
    currency: str = "EUR",
    **data,
) -> bytes:
    payload = {
        "id": event_id,
        "type": type,
        "data": {
            "donation_id": donation_id,
            "campaign": campaign,
            "amount_minor": amount_minor,
            "currency": currency,
            "donor": {"name": "Marie", "email": "m@example.org", "anonymous": False},
            "occurred_at": "2023-05-12T10:00:00Z",
            **data,
        },
    }
    return json.dumps(payload).encode()


def post_webhook(client: Client, body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None,
                 signature: str | None = None):
    header = signature if signature is not None else sign(body, secret, timestamp or int(time.time()))
    extra = {SIGNATURE_HEADER: header} if header else {}
    return client.post("/hooks/generic/", body, content_type="application/json", headers=extra)


@pytest.fixture
def worker(transactional_db):
    """A real Celery worker process consuming this run's queue against the test database."""
    from tests.worker import celery_worker

    with celery_worker() as process:
        yield process


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    import os
    import shutil

    chromium = "/usr/bin/chromium"
    if not shutil.which(chromium):
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("REQUIRE_BROWSER=1 but /usr/bin/chromium is not installed")
        pytest.skip("/usr/bin/chromium not installed (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between page actions are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


ARTIFACTS = __import__("pathlib").Path(__file__).resolve().parent.parent / "artifacts"
