from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_upsert


@pytest.fixture(autouse=True)
def _clean_cache():
    # Our own key prefix only: never flush the shared server.
    yield
    from campaigns.progress_cache import progress_local_forget

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



@pytest.fixture
def live(db, django_capture_on_commit_callbacks) -> Campaign:
    """An open campaign, `printemps`, in French, its banner published."""
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        campaign, _ = campaign_upsert(slug="printemps", defaults={
            "title": "Campagne de printemps", "goal_minor": 2_500_000, "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=29), "status": Campaign.Status.ACTIVE, "locale": "fr"})
    return campaign
