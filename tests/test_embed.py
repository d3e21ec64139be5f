"""The banner embeds: fragment, frame, loader and SVG — numbers, caching, headers, safety."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from campaigns import progress_cache
from campaigns.models import Campaign, Donation
from campaigns.services import ledger, pledge_verification
from campaigns.services.campaigns import campaign_changed, campaign_upsert
from campaigns.templatetags.jauge import banner_theme, contrast_ratio

NNBSP, NBSP = "\u202f", "\u00a0"
FR_TOTAL = f"20{NNBSP}077,00{NBSP}€"
FR_GOAL = f"25{NNBSP}000,00{NBSP}€"
DEMO = "mai-juin-2023"
ARTICLE_ORIGIN = "https://www.journal.example"

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db, django_capture_on_commit_callbacks) -> Campaign:
    """The demo's campaign and total (20 077,00 € of 25 000,00 €) in one gift: seed_demo's 455 take seconds."""
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        campaign, _ = campaign_upsert(slug=DEMO, defaults={
            "title": "Campagne de dons Mai-Juin 2023", "appeal": "Notre journal ne vit que de vos dons.",
            "goal_minor": 2_500_000, "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=29),
            "status": Campaign.Status.ACTIVE, "locale": "fr"})
    _give(campaign, django_capture_on_commit_callbacks, 2_007_700, external_id="demo-total")
    return campaign


def _edit(campaign: Campaign, capture, **fields) -> Campaign:
    for name, value in fields.items():
        setattr(campaign, name, value)
    with capture(execute=True):
        campaign.save()
        campaign_changed(campaign_id=campaign.pk)
    return campaign


def _give(campaign: Campaign, capture, amount_minor: int, *, external_id: str, source=Donation.Source.GENERIC):
    with capture(execute=True):
        ledger.donation_record(
            campaign=campaign, source=source, external_id=external_id, amount_minor=amount_minor,
            donor_email=f"{external_id}@example.org", at=timezone.now(),
        )


def _text(html: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", "", html))


def test_seeded_demo_shows_its_amounts_in_french_and_english_in_every_embed(client, db,
                                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=io.StringIO())
    for path in ("/embed/mai-juin-2023/", "/embed/mai-juin-2023/frame/"):
        response = client.get(path)
        assert response.status_code == 200
        text = _text(response.content.decode())
        assert f"Total de dons {FR_TOTAL} sur un objectif de {FR_GOAL}" in text
        assert "Campagne de dons Mai-Juin 2023" in text
        assert f"80{NBSP}%" in text
        assert "412 donateurs" in text
        assert "Faire un don" in text
        assert response["Content-Language"] == "fr"
    svg = client.get("/embed/mai-juin-2023.svg")
    assert svg.status_code == 200
    assert svg["Content-Type"].startswith("image/svg+xml")
    assert FR_TOTAL in svg.content.decode() and FR_GOAL in svg.content.decode()

    english = _text(client.get("/embed/mai-juin-2023/?lang=en").content.decode())
    assert "€20,077.00" in english and "€25,000.00" in english
    assert "412 donors" in english and "Donate" in english
    assert "Faire un don" not in english
    assert "€20,077.00" in client.get("/embed/mai-juin-2023.svg?lang=en").content.decode()


def test_svg_is_an_accessible_image(client, demo):
    body = client.get("/embed/mai-juin-2023.svg").content.decode()
    assert 'role="img"' in body and 'aria-labelledby="jauge-title jauge-desc"' in body
    assert "<title id=\"jauge-title\">Campagne de dons Mai-Juin 2023</title>" in body
    assert FR_TOTAL in re.search(r"<desc[^>]*>([^<]+)</desc>", body).group(1)


@pytest.mark.parametrize("variant", ["banner", "bar", "compact"])
def test_every_variant_has_an_accessible_progressbar(client, demo, variant):
    body = client.get(f"/embed/mai-juin-2023/?variant={variant}").content.decode()
    assert 'role="progressbar"' in body
    assert 'aria-valuenow="80.31"' in body
    valuetext = re.search(r'aria-valuetext="([^"]+)"', body).group(1)
    assert FR_TOTAL in valuetext and "de l&#x27;objectif" in valuetext
    assert FR_TOTAL in _text(body)


@pytest.mark.parametrize("path", ["/embed/nope/", "/embed/nope/frame/", "/embed/nope.js", "/embed/nope.svg"])
def test_unknown_campaign_is_404(client, db, path):
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("query", ["?variant=huge", "?lang=de"])
def test_bad_options_get_a_clear_400(client, demo, query):
    response = client.get(f"/embed/mai-juin-2023/{query}")
    assert response.status_code == 400
    assert ("variant" in response.content.decode()) or ("lang" in response.content.decode())


@pytest.mark.parametrize("path", ["/embed/mai-juin-2023/", "/embed/mai-juin-2023/frame/", "/embed/mai-juin-2023.svg"])
def test_matching_if_none_match_is_304_and_a_donation_changes_the_etag(
    client, demo, path, django_capture_on_commit_callbacks
):
    first = client.get(path)
    etag = first["ETag"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    _give(demo, django_capture_on_commit_callbacks, 2500, external_id="etag-1")
    after = client.get(path, headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after["ETag"] != etag
    assert f"20{NNBSP}102,00{NBSP}€" in after.content.decode()


def test_variant_and_language_have_their_own_etags(client, demo):
    tags = {client.get(f"/embed/mai-juin-2023/?variant={v}&lang={lang}")["ETag"]
            for v in ("banner", "bar", "compact") for lang in ("fr", "en")}
    assert len(tags) == 6


@pytest.mark.parametrize("path", ["/embed/mai-juin-2023/", "/embed/mai-juin-2023/frame/", "/embed/mai-juin-2023.js",
                                  "/embed/mai-juin-2023.svg"])
def test_embed_responses_are_publicly_cacheable_without_cookies(client, demo, path):
    response = client.get(path, headers={"Accept-Language": "de-DE,de;q=0.9", "Origin": ARTICLE_ORIGIN})
    assert response.status_code == 200
    assert not response.cookies
    assert "Set-Cookie" not in response
    vary = response.get("Vary", "").lower()
    assert "cookie" not in vary
    assert "accept-language" not in vary
    cache_control = response["Cache-Control"]
    assert "public" in cache_control and "max-age=" in cache_control and "stale-while-revalidate" in cache_control
    assert "ETag" in response


def test_loader_is_cacheable_for_long_and_data_is_not(client, demo):
    loader = client.get("/embed/mai-juin-2023.js")
    assert loader["Content-Type"].startswith("text/javascript")
    assert "max-age=3600" in loader["Cache-Control"]
    assert "attachShadow" in loader.content.decode()
    assert ".jauge" in loader.content.decode()  # the stylesheet travels inside the script
    assert "max-age=5" in client.get("/embed/mai-juin-2023/")["Cache-Control"]


def test_frame_is_framable_only_by_allowed_origins(client, demo, django_capture_on_commit_callbacks, settings):
    settings.EMBED_ALLOWED_ORIGINS = ["https://default.example"]
    frame = client.get("/embed/mai-juin-2023/frame/")
    assert frame["Content-Security-Policy"] == "frame-ancestors 'self' https://default.example"
    assert "X-Frame-Options" not in frame
    _edit(demo, django_capture_on_commit_callbacks,
          allowed_origins=f"{ARTICLE_ORIGIN}\nhttps://x.example; script-src *\n")
    frame = client.get("/embed/mai-juin-2023/frame/")
    assert frame["Content-Security-Policy"] == f"frame-ancestors 'self' {ARTICLE_ORIGIN}"
    for path in ("/embed/mai-juin-2023/", "/embed/mai-juin-2023.svg", "/c/mai-juin-2023/"):
        assert client.get(path)["X-Frame-Options"] == "DENY"


def test_cors_only_for_allowed_origins_with_htmx_preflight(client, demo, django_capture_on_commit_callbacks):
    _edit(demo, django_capture_on_commit_callbacks, allowed_origins=ARTICLE_ORIGIN)
    allowed = client.get("/embed/mai-juin-2023/", headers={"Origin": ARTICLE_ORIGIN, "HX-Request": "true"})
    assert allowed["Access-Control-Allow-Origin"] == ARTICLE_ORIGIN
    assert "Origin" in allowed["Vary"]
    other = client.get("/embed/mai-juin-2023/", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other

    preflight = client.options(
        "/embed/mai-juin-2023/",
        headers={"Origin": ARTICLE_ORIGIN, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "hx-request,hx-current-url,hx-target,hx-trigger"},
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == ARTICLE_ORIGIN
    allowed_headers = preflight["Access-Control-Allow-Headers"].lower()
    assert all(h in allowed_headers for h in ("hx-request", "hx-current-url", "hx-target", "hx-trigger"))
    refused = client.options("/embed/mai-juin-2023/", headers={"Origin": "https://evil.example",
                                                              "Access-Control-Request-Method": "GET"})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused


def test_campaign_text_is_sanitised(client, demo, django_capture_on_commit_callbacks):
    _edit(demo, django_capture_on_commit_callbacks,
          title="Dons <script>alert(1)</script>",
          appeal='Aidez-nous <strong>vite</strong><script>alert("x")</script>'
                 '<img src=x onerror="alert(2)"><a href="javascript:alert(3)" onclick="alert(4)">lien</a>')
    for path in ("/embed/mai-juin-2023/", "/embed/mai-juin-2023/frame/", "/embed/mai-juin-2023.svg"):
        body = client.get(path).content.decode()
        assert "<script>alert" not in body
        assert "onerror" not in body and "onclick" not in body and "javascript:" not in body
        assert "alert(2)" not in body
    body = client.get("/embed/mai-juin-2023/").content.decode()
    assert "<strong>vite</strong>" in body  # harmless formatting survives
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body  # the title is text, shown escaped


def test_theme_comes_from_the_campaign_and_stays_readable(client, demo, django_capture_on_commit_callbacks):
    _edit(demo, django_capture_on_commit_callbacks, color_primary="#ffd400", color_background="#101010",
          color_text="#202020", font_family="Georgia; background:url(x)")
    body = client.get("/embed/mai-juin-2023/").content.decode()
    style = re.search(r'class="jauge jauge--banner"[^>]*style="([^"]+)"', body).group(1)
    assert "--jauge-primary:#ffd400" in style
    assert "--jauge-on-primary:#000000" in style  # dark text on a yellow button
    assert "--jauge-text:#ffffff" in style  # #202020 on #101010 fails AA: replaced
    assert "url(" not in style and ";background" not in style
    theme = banner_theme({"color_primary": "#b8002e", "color_background": "#ffffff", "color_text": "#1a1a1a"})
    assert contrast_ratio(theme["text"], theme["background"]) >= 4.5
    assert contrast_ratio(theme["on_primary"], theme["primary"]) >= 4.5


def test_overfunding_is_shown_with_the_bar_capped(client, db, django_capture_on_commit_callbacks):
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        campaign, _ = campaign_upsert(slug="over", defaults={
            "title": "Au-delà", "goal_minor": 100_000, "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=3), "status": Campaign.Status.ACTIVE})
    _give(campaign, django_capture_on_commit_callbacks, 112_500, external_id="over-1")
    body = client.get("/embed/over/").content.decode()
    assert 'aria-valuenow="100.00"' in body
    assert "width: 100.00%" in body
    assert f"112{NBSP}%" in _text(body)
    assert "objectif dépassé" in body
    assert "112%" in _text(client.get("/embed/over/?lang=en").content.decode())


def test_pending_bank_transfers_are_a_separate_lighter_segment(client, demo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        pledge, _ = ledger.donation_create(campaign=demo, source=Donation.Source.BANK, external_id="VIR-1",
                                           amount_minor=125_000, currency="EUR", donor_email="v@example.org")
        # Shown once its donor confirmed it (test_pledge_verification).
        pledge_verification.pledge_confirm_by_donor(token=pledge_verification.pledge_confirm_token(donation=pledge))
    body = client.get("/embed/mai-juin-2023/").content.decode()
    assert f"dont 1{NNBSP}250,00{NBSP}€ en attente de virement" in _text(body)
    assert FR_TOTAL in _text(body)  # the confirmed total is unchanged
    assert 'class="jauge-fill-pending" style="width: 5.00%"' in body
    svg = client.get("/embed/mai-juin-2023.svg").content.decode()
    assert f"1{NNBSP}250,00{NBSP}€" in svg and 'fill-opacity="0.35"' in svg
    # Geometry is SVG syntax, not French prose: "454.4", never "454,4".
    assert re.search(r'<rect x="16" y="44" width="\d+(\.\d+)?" height="16" rx="8" fill="#b8002e"/>', svg)
    assert re.search(r'<rect x="\d+(\.\d+)?" y="44" width="\d+(\.\d+)?" height="16"', svg)


def test_live_banner_polls_and_a_closed_one_stops(client, demo, django_capture_on_commit_callbacks):
    _edit(demo, django_capture_on_commit_callbacks, poll_interval_seconds=15)
    live = client.get("/embed/mai-juin-2023/").content.decode()
    assert "hx-trigger=\"every 15s [document.visibilityState === 'visible']\"" in live
    assert 'hx-get="//testserver/embed/mai-juin-2023/?variant=banner&amp;lang=fr"' in live
    _edit(demo, django_capture_on_commit_callbacks, status=Campaign.Status.CLOSED)
    closed = client.get("/embed/mai-juin-2023/").content.decode()
    assert FR_TOTAL in _text(closed)
    assert "hx-trigger" not in closed and "hx-get" not in closed and "data-jauge-poll" not in closed
    assert "Faire un don" not in closed
    assert "Campagne terminée" in _text(closed)


def test_current_shows_the_live_campaign_or_nothing_with_slow_polling(client, db, django_capture_on_commit_callbacks):
    # "current" with no active campaign: an empty element that keeps polling slowly.
    empty = client.get("/embed/current/")
    assert empty.status_code == 200
    assert "jauge--empty" in empty.content.decode()
    assert "every 60s" in empty.content.decode()
    assert "Total de dons" not in empty.content.decode()
    assert client.get("/embed/current.svg").status_code == 200
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        campaign_upsert(slug="later", defaults={
            "title": "Plus tard", "goal_minor": 100, "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=60), "status": Campaign.Status.ACTIVE})
    assert 'hx-get="//testserver/embed/later/' in client.get("/embed/later/").content.decode()
    later = client.get("/embed/current/").content.decode()
    assert "Plus tard" in later
    assert 'hx-get="//testserver/embed/current/' in later  # keeps following whatever is current
    assert 'href="//testserver/c/later/"' in later
    with django_capture_on_commit_callbacks(execute=True):
        campaign_upsert(slug="featured", defaults={
            "title": "Mise en avant", "goal_minor": 100, "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=90), "status": Campaign.Status.ACTIVE, "featured": True})
    assert "Mise en avant" in client.get("/embed/current/").content.decode()


def test_banner_renders_with_at_most_one_query_and_none_when_cached(
    client, demo, django_assert_max_num_queries, django_assert_num_queries
):
    cache.delete(progress_cache.progress_key(DEMO))  # only our key: the Redis server is shared
    progress_cache.progress_local_forget()
    with django_assert_max_num_queries(1):
        assert client.get("/embed/mai-juin-2023/").status_code == 200
    with django_assert_num_queries(0):
        for path in ("/embed/mai-juin-2023/?variant=compact", "/embed/mai-juin-2023/frame/",
                     "/embed/mai-juin-2023.svg", "/embed/mai-juin-2023.js"):
            assert client.get(path).status_code == 200


def test_donate_link_carries_the_article_for_attribution(client, demo):
    body = client.get("/embed/mai-juin-2023/").content.decode()
    assert "data-jauge-give" in body
    assert "searchParams.set('article',location.href)" in body  # hx-on:click adds ?article=<article URL>


def test_no_session_is_touched(demo):
    client = Client(enforce_csrf_checks=True)
    response = client.get("/embed/mai-juin-2023/")
    assert response.wsgi_request.session.accessed is False


def test_a_goal_of_zero_is_refused_at_validation_and_by_the_database(demo):
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    demo.goal_minor = 0
    with pytest.raises(ValidationError) as error:
        demo.full_clean()
    assert "goal_minor" in error.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=demo.pk).update(goal_minor=0)


def test_draft_campaign_shows_nothing_yet_but_keeps_polling(client, demo, django_capture_on_commit_callbacks):
    _edit(demo, django_capture_on_commit_callbacks, status=Campaign.Status.DRAFT)
    body = client.get("/embed/mai-juin-2023/").content.decode()
    assert "jauge--empty" in body and "every 60s" in body
    assert "Campagne de dons" not in body


def test_the_admin_preview_token_shows_a_draft_privately_and_nothing_else_does(
    client, demo, django_capture_on_commit_callbacks
):
    from campaigns.views.embed import preview_token

    _edit(demo, django_capture_on_commit_callbacks, status=Campaign.Status.DRAFT)
    token = preview_token("mai-juin-2023")
    preview = client.get(f"/embed/mai-juin-2023/frame/?preview={token}")
    body = preview.content.decode()
    assert "Campagne de dons" in body and "20\u202f077,00\u00a0€" in body
    assert f"preview={token}" in body  # its polls stay previews
    assert preview["Cache-Control"] == "private, no-store"
    public = client.get("/embed/mai-juin-2023/frame/").content.decode()
    assert "Campagne de dons" not in public
    forged = client.get("/embed/mai-juin-2023/frame/?preview=mai-juin-2023:forged").content.decode()
    assert "Campagne de dons" not in forged
    other = client.get(f"/embed/mai-juin-2023/frame/?preview={preview_token('autre')}").content.decode()
    assert "Campagne de dons" not in other


def test_the_current_banner_renders_with_one_query_on_a_cold_cache(client, demo, django_assert_max_num_queries):
    cache.delete(progress_cache.progress_key(DEMO))
    progress_cache.current_slug_forget()
    progress_cache.progress_local_forget()
    with django_assert_max_num_queries(1):
        body = client.get("/embed/current/").content.decode()
    assert "20\u202f077,00\u00a0€" in body


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
