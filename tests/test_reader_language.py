"""Review of the public surface against DESIGN.md's contract: each test pins a defect found and fixed."""

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


@pytest.fixture
def live(db, django_capture_on_commit_callbacks) -> Campaign:
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        campaign, _ = campaign_upsert(slug="printemps", defaults={
            "title": "Campagne de printemps", "goal_minor": 2_500_000, "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=29), "status": Campaign.Status.ACTIVE, "locale": "fr"})
    return campaign


def test_progress_json_for_current_with_no_live_campaign_has_an_etag_answers_304_and_any_origin_may_read_it(
    client, db
):
    empty = client.get(CURRENT_JSON, headers={"Origin": ARTICLE_ORIGIN})
    assert empty.status_code == 200
    assert empty.json() == {"status": "none"}
    assert empty["Access-Control-Allow-Origin"] == "*"
    assert "public" in empty["Cache-Control"] and "stale-while-revalidate" in empty["Cache-Control"]
    etag = empty["ETag"]
    again = client.get(CURRENT_JSON, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again["ETag"] == etag
    assert "public" in again["Cache-Control"]


def test_a_campaign_starting_changes_the_etag_of_an_empty_current(client, db, django_capture_on_commit_callbacks):
    from campaigns import progress_cache

    etag = client.get(CURRENT_JSON)["ETag"]
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        campaign_upsert(slug="ete", defaults={
            "title": "Été", "goal_minor": 5000, "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=2), "status": Campaign.Status.ACTIVE})
    progress_cache.current_slug_forget()
    response = client.get(CURRENT_JSON, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.json()["slug"] == "ete"


@pytest.mark.parametrize("path", ["/api/campaigns/printemps/progress.json", CURRENT_JSON])
def test_progress_json_does_not_vary_on_the_browsers_language(client, live, path):
    # The JSON is the same for every reader: a shared cache must keep one copy, not one per language.
    first = client.get(path, headers={"Accept-Language": "de-DE,de;q=0.9"})
    not_modified = client.get(path, headers={"Accept-Language": "en", "If-None-Match": first["ETag"]})
    for response in (first, not_modified):
        assert "accept-language" not in response.get("Vary", "").lower()
        assert "Content-Language" not in response
    assert not_modified.status_code == 304


def test_progress_json_answers_head_like_get(client, live):
    response = client.head("/api/campaigns/printemps/progress.json")
    assert response.status_code == 200
    assert response["ETag"] == client.get("/api/campaigns/printemps/progress.json")["ETag"]


@pytest.mark.parametrize("path", ["/c/printemps/", "/healthz"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_read_only_urls_refuse_other_methods_with_405(client, live, path, method):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert client.get(path).status_code == 200
    assert client.head(path).status_code == 200


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


@pytest.mark.parametrize("htmx", [False, True])
def test_a_radio_groups_error_is_tied_to_its_group_for_screen_readers(client, live, htmx):
    import re

    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post("/c/printemps/donate/", {"name": "A", "email": "a@example.org", "provider": "nope",
                                                    "frequency": "yearly"}, headers=headers)
    html = response.content.decode()
    for group, error_id in (("amounts", "amount-error"), ("frequency", "frequency-error"),
                            ("providers", "provider-error")):
        fieldset = re.search(rf'<fieldset class="{group} has-error"([^>]*)>', html)
        assert fieldset, group
        assert f'aria-describedby="{error_id}"' in fieldset.group(1), group
        assert f'id="{error_id}"' in html


def test_every_environment_variable_the_settings_read_is_documented():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    source = (root / "config" / "settings.py").read_text()
    names = set(re.findall(r'(?:env_(?:str|int|bool|list)|os\.environ\.get)\(\s*"([A-Z][A-Z0-9_]+)"', source))
    assert {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EMBED_ALLOWED_ORIGINS"} <= names
    example = (root / ".env.example").read_text()
    readme = (root / "README.md").read_text()
    assert not {name for name in names if not re.search(rf"^#?\s*{name}=", example, re.M)}, ".env.example"
    assert not {name for name in names if f"`{name}`" not in readme}, "README"


def test_the_compose_web_healthcheck_asks_for_a_host_the_example_env_allows():
    # `cp .env.example .env` then `docker compose up`: a Host outside ALLOWED_HOSTS answers 400,
    # and the web service would never turn healthy.
    import re
    from pathlib import Path

    import yaml
    from django.http.request import validate_host

    root = Path(__file__).resolve().parent.parent
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    check = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    host = re.search(r"https?://([^/:'\"]+)(?::\d+)?/healthz", check).group(1)
    allowed = re.search(r"^ALLOWED_HOSTS=(.*)$", (root / ".env.example").read_text(), re.M).group(1).split(",")
    assert validate_host(host, [name.strip() for name in allowed])


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


def test_the_admins_htmx_snippet_is_the_readmes_one_that_polls_once_and_stops_when_closed(live, settings):
    # The fragment polls itself (and stops when the campaign closes): a container that polls too
    # would double every reader's requests and never stop.
    from campaigns.admin import embed_snippets

    settings.PUBLIC_URL = "https://dons.exemple.fr"
    live.title = 'Le "grand" appel'
    snippets = {name: code for name, _label, code in embed_snippets(live)}
    htmx = snippets["htmx"]
    assert 'hx-get="https://dons.exemple.fr/embed/printemps/"' in htmx
    assert 'hx-trigger="load"' in htmx and 'hx-swap="outerHTML"' in htmx
    assert "every" not in htmx
    # What the README says a cross-origin hx-get needs: htmx allowed off-origin, and the stylesheet.
    assert '"selfRequestsOnly": false' in htmx
    assert 'href="https://dons.exemple.fr/static/embed/jauge-embed.css"' in htmx
    # A quote in the title does not break the copied HTML.
    assert 'title="Le &quot;grand&quot; appel"' in snippets["iframe"]
    assert 'alt="Le &quot;grand&quot; appel"' in snippets["svg"]


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


@pytest.mark.parametrize("path", ["/embed/printemps/", "/embed/printemps/frame/", "/embed/printemps.svg",
                                  "/embed/printemps.js", "/api/campaigns/printemps/progress.json"])
def test_a_logged_in_editor_reading_an_embed_gets_the_public_answer(client, live, path, django_user_model):
    # The editor previewing their article carries session and CSRF cookies: the answer must still be
    # the shared, cookie-free one a cache may give to every reader.
    client.force_login(django_user_model.objects.create_user("editor", is_staff=True))
    client.get("/admin/")  # sets the CSRF cookie too
    response = client.get(path)
    assert response.status_code == 200
    assert not response.cookies
    assert "cookie" not in response.get("Vary", "").lower()
    assert response["Cache-Control"].startswith("public")
