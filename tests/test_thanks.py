"""After a gift: the thank-you page's way back to the article, and the banner's "thanks" variant.

The browser walk across origins is tests/e2e/test_thanks_browser.py; here, what the server answers.
"""

from __future__ import annotations

import html as htmllib
import re
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import ledger, pledges
from campaigns.services.campaigns import campaign_changed, campaign_upsert
from tests import factories

pytestmark = pytest.mark.django_db

NNBSP, NBSP = "\u202f", "\u00a0"
ARTICLE = "https://www.journal.example/2026/11/un-article"
MARKER = re.compile(r'href="https://www\.journal\.example/2026/11/un-article#jauge-thanks=test-campaign\.(\d+)"')


@pytest.fixture
def gift_campaign(campaign, django_capture_on_commit_callbacks) -> Campaign:
    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(
            campaign=campaign, source="generic", external_id="earlier", amount_minor=123_400,
            donor_email="earlier@example.org", at=timezone.now(),
        )
    return campaign


def _pledge(campaign: Campaign, article: str = ARTICLE):
    return pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500, article_url=article)


def _thanks_page(client, donation, lang: str = "") -> str:
    query = f"?lang={lang}" if lang else ""
    return htmllib.unescape(client.get(f"/c/{donation.campaign.slug}/merci/{donation.reference}/{query}")
                            .content.decode())


def test_the_thank_you_page_links_back_to_the_article_with_a_marker_for_thank_days(client, gift_campaign):
    donation = _pledge(gift_campaign)
    factories.confirm(donation.pk)
    page = _thanks_page(client, donation)
    assert "Retour à l'article" in page
    until = int(MARKER.search(page).group(1))
    assert abs(until - (time.time() + 30 * 86400)) < 60

    gift_campaign.thank_days = 7
    gift_campaign.save()
    english = _thanks_page(client, donation, "en")
    assert "Back to the article" in english
    assert abs(int(MARKER.search(english).group(1)) - (time.time() + 7 * 86400)) < 60


def test_a_pending_gift_is_thanked_too_and_an_article_anchor_gives_way_to_the_marker(client, gift_campaign):
    donation = _pledge(gift_campaign, article=ARTICLE + "#comments")
    page = _thanks_page(client, donation)
    assert MARKER.search(page), "a reader waiting for the provider's confirmation has given already"
    assert "#comments" not in page


def test_a_failed_gift_links_back_without_the_marker(client, gift_campaign):
    donation = _pledge(gift_campaign)
    factories.fail(donation.pk)
    page = _thanks_page(client, donation)
    assert f'href="{ARTICLE}"' in page
    assert "jauge-thanks" not in page


def test_thank_days_zero_never_replaces_the_ask_and_no_article_means_no_link(client, gift_campaign):
    gift_campaign.thank_days = 0
    gift_campaign.save()
    donation = _pledge(gift_campaign)
    page = _thanks_page(client, donation)
    assert f'href="{ARTICLE}"' in page and "jauge-thanks" not in page

    without = _pledge(gift_campaign, article="")
    assert "Retour à l'article" not in _thanks_page(client, without)


def test_thank_days_beyond_a_year_is_refused_by_validation_and_by_the_database(gift_campaign):
    gift_campaign.thank_days = 400
    with pytest.raises(ValidationError) as error:
        gift_campaign.full_clean()
    assert "thank_days" in error.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=gift_campaign.pk).update(thank_days=400)
    assert Campaign.objects.get(pk=gift_campaign.pk).thank_days == 30


@pytest.mark.parametrize(("lang", "words", "amounts"), [
    ("fr", ("Merci !", "Revoir l'appel"), f"1{NNBSP}234,00{NBSP}€ sur 10{NNBSP}000,00{NBSP}€"),
    ("en", ("Thank you!", "Show the appeal again"), "€1,234.00 of €10,000.00"),
])
def test_the_thanks_variant_says_thank_you_with_the_live_total_and_no_ask(client, gift_campaign, lang, words, amounts):
    for path in ("/embed/test-campaign/", "/embed/test-campaign/frame/"):
        body = htmllib.unescape(client.get(f"{path}?variant=thanks&lang={lang}").content.decode())
        for word in words:
            assert word in body
        assert amounts in body
        assert 'role="progressbar"' in body and re.search(r'role="progressbar" aria-label="[^"]+"', body)
        assert "Faire un don" not in body and "Donate" not in body, "no ask while thanking"
        assert 'data-jauge-slug="test-campaign"' in body
        # It keeps polling itself, as the thanks variant.
        assert "variant=thanks" in re.search(r'hx-get="([^"]+)"', body).group(1)


def test_the_thanks_variant_is_cached_like_the_others_under_its_own_etag(
    client, gift_campaign, django_capture_on_commit_callbacks
):
    ask = client.get("/embed/test-campaign/?variant=compact")
    thanks = client.get("/embed/test-campaign/?variant=thanks")
    assert thanks.status_code == 200
    assert thanks["ETag"] != ask["ETag"] and "-thanks-" in thanks["ETag"]
    assert thanks["Cache-Control"] == ask["Cache-Control"] and "public" in thanks["Cache-Control"]
    assert "Set-Cookie" not in thanks and "Cookie" not in thanks.get("Vary", "")
    assert client.get("/embed/test-campaign/?variant=thanks", headers={"If-None-Match": thanks["ETag"]}
                      ).status_code == 304
    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(campaign=gift_campaign, source="generic", external_id="later", amount_minor=100,
                               donor_email="later@example.org", at=timezone.now())
    again = client.get("/embed/test-campaign/?variant=thanks", headers={"If-None-Match": thanks["ETag"]})
    assert again.status_code == 200 and f"1{NNBSP}235,00{NBSP}€" in again.content.decode()


def test_current_tells_the_loader_which_campaign_it_resolved_to(client, gift_campaign,
                                                                  django_capture_on_commit_callbacks):
    body = client.get("/embed/current/?variant=compact").content.decode()
    assert 'data-jauge-slug="test-campaign"' in body
    # A new featured campaign takes over `current`: the loader learns the new slug from the markup.
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        other, _ = campaign_upsert(slug="autre", defaults={
            "title": "Autre", "goal_minor": 100_000, "starts_at": now - timedelta(hours=1),
            "ends_at": now + timedelta(days=3), "status": Campaign.Status.ACTIVE, "featured": True})
        campaign_changed(campaign_id=other.pk)
    assert 'data-jauge-slug="autre"' in client.get("/embed/current/?variant=thanks").content.decode()


def test_the_svg_is_the_same_image_whatever_the_variant(client, gift_campaign):
    plain = client.get("/embed/test-campaign.svg")
    thanks = client.get("/embed/test-campaign.svg?variant=thanks")
    assert plain.content == thanks.content and "Merci" not in thanks.content.decode()
