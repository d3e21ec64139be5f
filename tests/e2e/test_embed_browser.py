"""A reader's article on another origin embeds the banner three ways; a donation shows up live.

Chromium (Debian's, driven by Playwright) loads http://127.0.0.2:<port>/article.html, whose CSS tries
to restyle every div. The article embeds the banner by script (shadow root), by iframe and by hx-get.
A signed webhook goes to the live server, a real Celery worker applies it, and each embed shows the
new total without a reload.
"""

from __future__ import annotations

import functools
import http.server
import io
import re
import shutil
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_changed
from tests.factories import ARTIFACTS, webhook_body
from tests.live import post_signed

pytestmark = [pytest.mark.postgres, pytest.mark.worker, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
NNBSP, NBSP = "\u202f", "\u00a0"
DEMO_TOTAL = f"20{NNBSP}077,00{NBSP}€"
NEW_TOTAL = f"20{NNBSP}102,00{NBSP}€"
POLL_SECONDS = 2

ARTICLE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Un article</title>
<meta name="htmx-config" content='{{"selfRequestsOnly": false}}'>
<script src="/htmx.min.js"></script>
<link rel="stylesheet" href="{jauge}/static/embed/jauge-embed.css">
<style>
  /* A hostile theme: every div restyled. The script and iframe embeds must not care. */
  div {{ background: #ff00ff; color: #00ff00; font-family: "Comic Sans MS", cursive; font-size: 9px;
         border: 6px dashed orange; padding: 20px; letter-spacing: 4px; }}
  body {{ font-size: 30px; color: purple; }}
</style></head>
<body><h1>Un article du journal</h1><p>Texte de l'article…</p>
<section id="by-script"><script src="{jauge}/embed/mai-juin-2023.js" async></script></section>
<section id="by-loader-iframe"><script src="{jauge}/embed/mai-juin-2023.js" data-mode="iframe"
  data-variant="compact" async></script></section>
<section id="by-iframe"><iframe id="frame" src="{jauge}/embed/mai-juin-2023/frame/" title="Campagne de dons"
  style="border:0;width:100%;height:220px"></iframe></section>
<section id="by-htmx"><div hx-get="{jauge}/embed/mai-juin-2023/?variant=bar" hx-trigger="load"
  hx-swap="outerHTML"></div></section>
</body></html>
"""


@pytest.fixture
def article_origin(tmp_path, live_server):
    """A static site on 127.0.0.2 (another origin than the live server) serving article.html."""
    (tmp_path / "article.html").write_text(ARTICLE.format(jauge=live_server.url))
    shutil.copy(ROOT / "static" / "vendor" / "htmx.min.js", tmp_path / "htmx.min.js")
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


def test_article_on_another_origin_shows_live_banners_by_script_iframe_and_htmx(
    live_server, worker, article_origin, page, django_capture_on_commit_callbacks
):
    call_command("seed_demo", stdout=io.StringIO())
    campaign = Campaign.objects.get(slug="mai-juin-2023")
    campaign.allowed_origins = article_origin
    campaign.poll_interval_seconds = POLL_SECONDS
    campaign.save()
    campaign_changed(campaign_id=campaign.pk)  # transactional test: on_commit runs at once

    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    page.goto(f"{article_origin}/article.html")

    by_script = page.locator("#by-script .jauge-amounts")  # Playwright pierces the open shadow root
    by_iframe = page.frame_locator("#frame").locator(".jauge-amounts")
    by_htmx = page.locator("#by-htmx .jauge-amounts")
    by_loader_iframe = page.frame_locator("#by-loader-iframe iframe").locator(".jauge-amounts")
    embeds = (by_script, by_iframe, by_htmx, by_loader_iframe)
    for embed in embeds:
        expect(embed).to_contain_text(DEMO_TOTAL, timeout=15_000)
        expect(embed).to_contain_text(f"25{NNBSP}000,00{NBSP}€")

    # The shadow root keeps the host's `div` rules out; the donate link carries the article's URL.
    banner_background = page.locator("#by-script .jauge").evaluate("e => getComputedStyle(e).backgroundColor")
    assert banner_background == "rgb(255, 255, 255)"
    give = page.locator("#by-script .jauge-give")
    assert "article=http%3A%2F%2F127.0.0.2" in give.get_attribute("href")
    # The loader's iframe mode sizes itself from the height the frame posts.
    loader_frame = page.locator("#by-loader-iframe iframe")
    expect(loader_frame).to_have_attribute("style", re.compile(r"height: [1-9]\d*px"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "embed-article-before.png"), full_page=True)

    status, _ = post_signed(live_server.url, webhook_body(
        event_id="evt_browser_1", donation_id="don_browser_1", campaign="mai-juin-2023", amount_minor=2500))
    assert status == 202

    # No reload: each embed polls (every POLL_SECONDS while visible) and picks up the new total.
    for embed in embeds:
        expect(embed).to_contain_text(NEW_TOTAL, timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "embed-article.png"), full_page=True)
    assert not failures, failures
