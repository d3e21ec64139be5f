"""An English article on another origin: the banner shows the campaign's English title and appeal
by script, iframe and hx-get; an editor's new English title appears without a reload; "Donate"
opens the donation page in English. Debian's Chromium, driven by Playwright."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_save, campaign_upsert
from tests.factories import ARTIFACTS

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]

ARTICLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>An article</title>
<meta name="htmx-config" content='{{"selfRequestsOnly": false}}'>
<script src="/htmx.min.js"></script>
<link rel="stylesheet" href="{jauge}/static/embed/jauge-embed.css"></head>
<body><h1>An article</h1>
<section id="by-script"><script src="{jauge}/embed/ete.js" data-lang="en" async></script></section>
<section id="by-iframe"><iframe id="frame" src="{jauge}/embed/ete/frame/?lang=en" title="Fundraising"
  style="border:0;width:100%;height:240px"></iframe></section>
<section id="by-htmx"><div hx-get="{jauge}/embed/ete/?lang=en" hx-trigger="load" hx-swap="outerHTML"></div>
</section>
</body></html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


@pytest.fixture
def english_article(tmp_path, live_server):
    (tmp_path / "article.html").write_text(ARTICLE.format(jauge=live_server.url))
    shutil.copy(ROOT / "static" / "vendor" / "htmx.min.js", tmp_path / "htmx.min.js")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.2", 0), functools.partial(_QuietHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_english_reader_sees_the_english_campaign_text_everywhere_and_live(
    transactional_db, live_server, english_article, page
):
    now = timezone.now()
    campaign, _ = campaign_upsert(slug="ete", defaults={
        "title": "Campagne d'été", "appeal": "Aidez-nous cet été.", "goal_minor": 1_000_000,
        "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=29),
        "status": Campaign.Status.ACTIVE, "locale": "fr", "allowed_origins": english_article,
        "poll_interval_seconds": 2,
        "translations": {"en": {"title": "Summer campaign", "appeal": "Help us this summer."}},
    })
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    page.goto(f"{english_article}/article.html")

    titles = (page.locator("#by-script .jauge-title"), page.frame_locator("#frame").locator(".jauge-title"),
              page.locator("#by-htmx .jauge-title"))
    for title in titles:
        expect(title).to_have_text("Summer campaign", timeout=15_000)
    expect(page.locator("#by-script .jauge-appeal")).to_have_text("Help us this summer.")
    expect(page.locator("#by-script .jauge")).to_have_attribute("lang", "en")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "campaign-texts-english.png"), full_page=True)

    # An editor changes the English title: every banner follows at its next poll, no reload.
    campaign.translations = {"en": {"title": "Our summer campaign", "appeal": "Help us this summer."}}
    campaign_save(campaign=campaign)  # transactional test: the publish runs at once
    for title in titles:
        expect(title).to_have_text("Our summer campaign", timeout=20_000)

    page.locator("#by-script .jauge-give").click()
    page.wait_for_url("**/c/ete/**")
    expect(page.locator("h1")).to_have_text("Our summer campaign")
    assert "lang=en" in page.url
    assert not failures, failures
