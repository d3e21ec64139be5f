"""A reader who has just given is thanked, not asked again, on every banner of the publication.

The publication is another origin (http://127.0.0.2:<port>, a second local HTTP server) whose
articles embed the banner from the live Jauge server: by script (shadow root), by the loader's
iframe mode, by `current`, and by the plain <iframe> snippet with the one-line relay. The reader
gives through the sandbox checkout (a real worker sends the signed webhook back), follows the
thank-you page's link back to the article, and sees « Merci ! » with the live total everywhere —
after a reload and on another article too — until they click "Revoir l'appel".
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
import time

import pytest
from playwright.sync_api import expect

from campaigns.services.campaigns import campaign_changed
from tests.factories import ARTIFACTS
from tests.worker import celery_worker

pytestmark = [pytest.mark.postgres, pytest.mark.worker, pytest.mark.browser]

NNBSP, NBSP = "\u202f", "\u00a0"
GIFT_TOTAL = f"25,00{NBSP}€ sur 10{NNBSP}000,00{NBSP}€"
KEY = "jauge-thanks:test-campaign"

ARTICLE_HEAD = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>{title}</title></head>
<body><main><h1>{title}</h1><p>Texte de l'article…</p>
"""
# Every way a publisher embeds the banner, on one page.
ARTICLE_ALL = ARTICLE_HEAD + """
<section id="by-script"><script src="{jauge}/embed/test-campaign.js" async></script></section>
<section id="by-loader-iframe"><script src="{jauge}/embed/test-campaign.js" data-mode="iframe"
  data-variant="compact" async></script></section>
<section id="by-current"><script src="{jauge}/embed/current.js" data-variant="compact" async></script></section>
<section id="by-iframe"><iframe id="frame" src="{jauge}/embed/test-campaign/frame/" title="Campagne de dons"
  style="border:0;width:100%;height:220px"></iframe></section>
</main></body></html>
"""
# A publisher whose CMS only takes the plain iframe, plus the relay line README documents.
ARTICLE_IFRAME_ONLY = ARTICLE_HEAD + """
<section id="by-iframe"><iframe id="frame" src="{jauge}/embed/test-campaign/frame/" title="Campagne de dons"
  style="border:0;width:100%;height:220px"></iframe></section>
<script src="{jauge}/embed/test-campaign.js" data-mode="relay" async></script>
</main></body></html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


@pytest.fixture
def publication(tmp_path, live_server):
    """The publisher's site: another origin (127.0.0.2, its own port) than the live Jauge server."""
    (tmp_path / "article-1.html").write_text(ARTICLE_ALL.format(jauge=live_server.url, title="Premier article"))
    (tmp_path / "article-2.html").write_text(
        ARTICLE_IFRAME_ONLY.format(jauge=live_server.url, title="Second article"))
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), functools.partial(_QuietHandler, directory=tmp_path))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _embeds(page) -> dict:
    return {
        "script": page.locator("#by-script .jauge"),
        "loader iframe": page.frame_locator("#by-loader-iframe iframe").locator(".jauge"),
        "current": page.locator("#by-current .jauge"),
        "iframe": page.frame_locator("#frame").locator(".jauge"),
    }


def _expect_thanked(embeds: dict) -> None:
    for name, embed in embeds.items():
        expect(embed, name).to_contain_text("Merci !", timeout=20_000)
        expect(embed, name).to_contain_text(GIFT_TOTAL)
        expect(embed.get_by_role("button", name="Revoir l'appel"), name).to_be_visible()
        expect(embed.locator(".jauge-give"), name).to_have_count(0)


def _expect_asked(embeds: dict) -> None:
    for name, embed in embeds.items():
        expect(embed.locator(".jauge-give"), name).to_have_text("Faire un don", timeout=20_000)
        expect(embed, name).not_to_contain_text("Merci !")


def test_after_a_gift_the_publications_banners_say_thank_you_until_the_reader_asks_again(
    transactional_db, campaign, live_server, publication, page
):
    campaign.allowed_origins = publication
    campaign.poll_interval_seconds = 2
    campaign.save()
    campaign_changed(campaign_id=campaign.pk)
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_default_timeout(30_000)
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    article = f"{publication}/article-1.html"

    page.goto(article)
    _expect_asked(_embeds(page))

    with celery_worker(PUBLIC_URL=live_server.url):
        # The reader gives from the banner; the article's URL travels with the gift.
        page.locator("#by-script .jauge-give").click()
        page.wait_for_url(re.compile(r"/c/test-campaign/\?article=http"))
        page.get_by_label(f"25,00{NBSP}€").check()
        page.get_by_label("Nom").fill("Marie Curie")
        page.get_by_label("E-mail").fill("marie@example.org")
        page.get_by_role("button", name="Donner").click()
        page.get_by_role("button", name="Confirmer le paiement").click()
        page.wait_for_url(re.compile(r"/c/test-campaign/merci/JG-[0-9A-Z]{7}/$"))
        expect(page.locator(".pledge-state")).to_contain_text("votre don compte dans le total")
        back = page.get_by_role("link", name="Retour à l'article")
        marked = back.get_attribute("href")
        assert re.fullmatch(re.escape(article) + r"#jauge-thanks=test-campaign\.\d{10}", marked), marked
        back.click()

    # The loader took the marker into this site's storage and out of the address bar.
    page.wait_for_url(article)
    until_ms = int(page.evaluate(f"() => localStorage.getItem('{KEY}')"))
    assert abs(until_ms / 1000 - (time.time() + 30 * 86400)) < 120
    assert page.evaluate("() => location.hash") == ""
    _expect_thanked(_embeds(page))
    page.screenshot(path=str(ARTIFACTS / "thanks-article.png"), full_page=True)

    page.reload()
    _expect_thanked(_embeds(page))

    # Another article, where the publisher only pasted the plain iframe and the relay line.
    page.goto(f"{publication}/article-2.html")
    plain = {"iframe": page.frame_locator("#frame").locator(".jauge")}
    _expect_thanked(plain)
    # "Show again" inside the frame: the frame tells the page, the page forgets the marker.
    plain["iframe"].get_by_role("button", name="Revoir l'appel").click()
    _expect_asked(plain)
    assert page.evaluate(f"() => localStorage.getItem('{KEY}')") is None

    page.goto(article)
    _expect_asked(_embeds(page))

    # The same thank-you link again, then "show again" in the script's banner: every banner follows.
    page.goto(marked)
    _expect_thanked(_embeds(page))
    page.locator("#by-script").get_by_role("button", name="Revoir l'appel").click()
    _expect_asked(_embeds(page))
    page.reload()
    _expect_asked(_embeds(page))
    assert page.evaluate(f"() => localStorage.getItem('{KEY}')") is None
    assert not failures, failures


def test_an_expired_or_malformed_marker_is_dropped_and_the_ask_stays(transactional_db, campaign, live_server,
                                                                     publication, page):
    campaign.allowed_origins = publication
    campaign.save()
    campaign_changed(campaign_id=campaign.pk)
    article = f"{publication}/article-1.html"
    for marker in (f"test-campaign.{int(time.time()) - 60}", "test-campaign.soon", "<script>.1"):
        page.goto(f"{article}#jauge-thanks={marker}")
        _expect_asked(_embeds(page))
        assert page.evaluate(f"() => localStorage.getItem('{KEY}')") is None
    # A reader's own anchors are left alone.
    page.goto(f"{article}#comments")
    _expect_asked(_embeds(page))
    assert page.evaluate("() => location.hash") == "#comments"
