"""Bad input at the edges gets a clear answer, and absolute URLs come from PUBLIC_URL."""

from __future__ import annotations

import time

import pytest
import stripe

from campaigns.models import Campaign, Donation, PaymentEvent
from campaigns.services import pledges
from tests.factories import post_webhook, webhook_body
from tests.test_stripe import FakeStripeHTTP, post_stripe, stripe_event

pytestmark = pytest.mark.django_db

NON_ASCII = ["t={t},v1=\u00e9\u00e9", "t={t},v1=caf\u00e9", "t=\u00e9,v1=abc", "\u00ff\u00fe"]


@pytest.mark.parametrize("header", NON_ASCII)
def test_a_non_ascii_generic_signature_answers_401(client, campaign, header):
    response = post_webhook(client, webhook_body(event_id="evt_na"), signature=header.format(t=int(time.time())))
    assert response.status_code == 401
    assert "signature" in response.json()["error"]
    assert not PaymentEvent.objects.exists()


@pytest.mark.parametrize("header", NON_ASCII)
def test_a_non_ascii_stripe_signature_answers_401(client, settings, header):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_" + "e" * 32
    body = stripe_event("evt_na", "checkout.session.completed", {"id": "cs_1", "object": "checkout.session"})
    response = post_stripe(client, body, header=header.format(t=int(time.time())))
    assert response.status_code == 401
    assert not PaymentEvent.objects.exists()


def test_a_valid_generic_signature_still_answers_202(client, campaign):
    """The refusal above is about the bytes, not about every signature."""
    assert post_webhook(client, webhook_body(event_id="evt_ok")).status_code == 202


def test_a_drafts_progress_json_is_404_and_says_nothing(client, campaign):
    campaign.status = Campaign.Status.DRAFT
    campaign.title = "Projet secret de la rédaction"
    campaign.save()
    from campaigns.services.progress import progress_publish

    progress_publish(campaign_id=campaign.pk)
    response = client.get(f"/api/campaigns/{campaign.slug}/progress.json")
    assert response.status_code == 404
    assert "Projet secret" not in response.content.decode()
    # Its embeds stay empty placeholders (200, so a publisher can paste them before launch): no title.
    for url in (f"/embed/{campaign.slug}/", f"/embed/{campaign.slug}/frame/", f"/embed/{campaign.slug}.svg"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Projet secret" not in response.content.decode(), url
    campaign.status = Campaign.Status.ACTIVE
    campaign.save()
    progress_publish(campaign_id=campaign.pk)
    assert client.get(f"/api/campaigns/{campaign.slug}/progress.json").status_code == 200


def test_share_links_come_from_public_url_not_the_request(client, campaign, settings):
    settings.PUBLIC_URL = "https://dons.example.org"
    donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500)
    html = client.get(f"/c/test-campaign/merci/{donation.reference}/", HTTP_HOST="127.0.0.1").content.decode()
    assert "https%3A%2F%2Fdons.example.org%2Fc%2Ftest-campaign%2F" in html
    assert "http%3A%2F%2F127.0.0.1" not in html


def test_stripe_return_urls_come_from_public_url_behind_a_proxy(client, campaign, settings, monkeypatch):
    settings.PUBLIC_URL = "https://dons.example.org"
    settings.STRIPE_SECRET_KEY = "sk_test_jauge"
    settings.PAYMENT_PROVIDERS = ["stripe"]
    settings.DONATE_RATE_LIMIT = "1000/m"
    fake = FakeStripeHTTP()
    monkeypatch.setattr(stripe, "default_http_client", fake)
    # The proxy speaks plain http to Jauge, with its own Host.
    response = client.post("/c/test-campaign/donate/", {"amount": "25", "frequency": "once", "name": "Marie",
                                                        "email": "m@example.org", "provider": "stripe"},
                           HTTP_HOST="127.0.0.1")
    assert response.status_code == 302
    pledge = Donation.objects.get()
    data = {key: values[0] for key, values in fake.requests[0]["data"].items()}
    assert data["success_url"] == f"https://dons.example.org/c/test-campaign/merci/{pledge.reference}/"
    assert data["cancel_url"] == "https://dons.example.org/c/test-campaign/"
