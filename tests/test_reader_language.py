"""A reader in another language than the campaign's: banners, loader and pages keep that language."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_upsert

pytestmark = pytest.mark.django_db

ARTICLE_ORIGIN = "https://www.journal.example"
CURRENT_JSON = "/api/campaigns/current/progress.json"








@pytest.mark.parametrize("path", ["/api/campaigns/printemps/progress.json", CURRENT_JSON])
def test_progress_json_does_not_vary_on_the_browsers_language(client, live, path):
    # The JSON is the same for every reader: a shared cache must keep one copy, not one per language.
    first = client.get(path, headers={"Accept-Language": "de-DE,de;q=0.9"})
    not_modified = client.get(path, headers={"Accept-Language": "en", "If-None-Match": first["ETag"]})
    for response in (first, not_modified):
        assert "accept-language" not in response.get("Vary", "").lower()
        assert "Content-Language" not in response
    assert not_modified.status_code == 304






@pytest.mark.parametrize("path", ["/embed/printemps/", "/embed/printemps/frame/", "/embed/current/"])
def test_an_english_banner_sends_readers_to_the_english_donation_page(client, live, path):
    english = client.get(path, {"lang": "en"}).content.decode()
    assert 'href="//testserver/c/printemps/?lang=en"' in english
    # The campaign's own language needs no parameter.
    assert 'href="//testserver/c/printemps/"' in client.get(path, {"lang": "fr"}).content.decode()
    # Attribution adds ?article= to the link without dropping the language.
    assert "this.search=" not in english
    page = client.get("/c/printemps/", {"lang": "en", "article": "https://www.journal.example/a"})
    assert "Amount of your gift" in page.content.decode()


def test_the_loader_adds_the_article_without_dropping_the_language(client, live):
    script = client.get("/embed/printemps.js").content.decode()
    assert ".search = " not in script
    assert 'searchParams.set("article"' in script








ENGLISH_ARTICLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>An article</title>
<meta name="htmx-config" content='{{"selfRequestsOnly": false}}'>
<script src="{jauge}/static/vendor/htmx.min.js"></script></head>
<body><h1>An article</h1>
<section id="by-htmx"><div hx-get="{jauge}/embed/printemps/?lang=en" hx-trigger="load" hx-swap="outerHTML"></div>
</section>
<section id="by-script"><script src="{jauge}/embed/printemps.js" data-lang="en" async></script></section>
</body></html>
"""


@pytest.fixture
def english_article(tmp_path, live_server):
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
            pass

    (tmp_path / "article.html").write_text(ENGLISH_ARTICLE.format(jauge=live_server.url))
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.browser
def test_a_reader_of_an_english_article_gives_on_the_english_page_with_attribution(
    transactional_db, live_server, english_article, page
):
    from playwright.sync_api import expect

    from campaigns.services.campaigns import campaign_changed

    now = timezone.now()
    campaign, _ = campaign_upsert(slug="printemps", defaults={
        "title": "Campagne de printemps", "goal_minor": 2_500_000, "starts_at": now - timedelta(days=1),
        "ends_at": now + timedelta(days=29), "status": Campaign.Status.ACTIVE, "locale": "fr",
        "allowed_origins": english_article})
    campaign_changed(campaign_id=campaign.pk)
    page.goto(f"{english_article}/article.html")
    by_script = page.locator("#by-script .jauge-give")
    expect(by_script).to_have_text("Donate", timeout=15_000)
    by_script_href = by_script.get_attribute("href")
    assert "lang=en" in by_script_href and "article=http%3A%2F%2F127.0.0.2" in by_script_href
    give = page.locator("#by-htmx .jauge-give")
    expect(give).to_have_text("Donate", timeout=15_000)
    give.click()
    page.wait_for_url(re.compile(r"/c/printemps/\?"))
    assert "lang=en" in page.url and "article=http%3A%2F%2F127.0.0.2" in page.url
    expect(page.locator("legend").first).to_have_text("Amount of your gift")
    assert page.locator("input[name=article]").input_value().startswith("http://127.0.0.2")




def test_refused_and_closed_pages_lead_an_english_reader_back_to_the_english_page(client, live):
    form = {"amount": "25", "frequency": "once", "name": "Ann", "email": "ann@example.org", "provider": "sandbox",
            "lang": "en"}
    refused = client.post("/c/printemps/donate/", {**form, "website": "http://spam.example"})
    assert refused.status_code == 400
    assert 'href="/c/printemps/?lang=en"' in refused.content.decode()
    Campaign.objects.filter(pk=live.pk).update(status=Campaign.Status.PAUSED)
    closed = client.post("/c/printemps/donate/", form)
    assert closed.status_code == 403
    assert 'href="/c/printemps/?lang=en"' in closed.content.decode()


