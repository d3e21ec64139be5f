"""A reader, in Chromium: chooses 25 €, fills the form, confirms on the sandbox checkout and lands on
the thank-you page; a real worker posts the signed webhook back over HTTP and the total rises by
exactly 25,00 €. A declined checkout moves nothing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import CampaignTotal, Donation, PaymentEvent
from tests.factories import ARTIFACTS
from tests.worker import celery_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.worker, pytest.mark.browser]

NNBSP, NBSP = "\u202f", "\u00a0"


def give(page, base: str, *, name: str, email: str) -> None:
    page.goto(f"{base}/c/test-campaign/")
    page.get_by_label(f"25,00{NBSP}€").check()
    page.get_by_label("Nom").fill(name)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Message public (facultatif)").fill("Longue vie au journal")
    expect(page.get_by_label("Paiement de test (bac à sable)")).to_be_checked()
    page.get_by_role("button", name="Donner").click()
    page.wait_for_url(re.compile(r"/c/test-campaign/checkout/JG-[0-9A-Z]{7}/$"))
    expect(page.get_by_text("MODE TEST")).to_be_visible()
    expect(page.locator(".checkout-amount")).to_have_text(f"25,00{NBSP}€")


def test_a_reader_gives_25_euros_through_the_sandbox_and_the_total_rises_by_exactly_that(
    transactional_db, campaign, live_server, page
):
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_default_timeout(30_000)
    # The worker's round trip (task → HTTP webhook → task) can take a while on a busy CI machine.
    expect.set_options(timeout=30_000)
    before = CampaignTotal.objects.get(campaign=campaign).total_minor
    with celery_worker(PUBLIC_URL=live_server.url):
        give(page, live_server.url, name="Marie Curie", email="marie@example.org")
        page.screenshot(path=str(ARTIFACTS / "donate-sandbox-checkout.png"), full_page=True)
        page.get_by_role("button", name="Confirmer le paiement").click()
        page.wait_for_url(re.compile(r"/c/test-campaign/merci/JG-[0-9A-Z]{7}/$"))
        expect(page.get_by_role("heading", name="Merci !")).to_be_visible()
        # The page follows the pledge until the worker has applied the webhook.
        expect(page.locator(".pledge-state")).to_contain_text("votre don compte dans le total")
        expect(page.locator(".pledge-status .jauge-amounts strong")).to_have_text(f"25,00{NBSP}€")
        page.screenshot(path=str(ARTIFACTS / "donate-thanks.png"), full_page=True)
        after = CampaignTotal.objects.get(campaign=campaign).total_minor
        assert after - before == 2500
        confirmed = Donation.objects.get(status=Donation.Status.CONFIRMED)
        # It came through the production path: a signed generic webhook, stored, then applied.
        event = PaymentEvent.objects.get(provider="generic", donation=confirmed)
        assert event.status == PaymentEvent.Status.PROCESSED
        # The receipt task ran too (console backend in tests' worker): the claim is set.
        wait_until(lambda: Donation.objects.filter(pk=confirmed.pk, receipt_sent_at__isnull=False).exists(),
                   message="the receipt to be sent")

        give(page, live_server.url, name="Pierre Curie", email="pierre@example.org")
        page.get_by_role("button", name="Refuser le paiement").click()
        page.wait_for_url(re.compile(r"/merci/JG-[0-9A-Z]{7}/$"))
        expect(page.locator(".pledge-state")).to_contain_text("aucun montant n'a été débité ni compté")
        declined = Donation.objects.get(donor_email="pierre@example.org")
        assert declined.status == Donation.Status.FAILED
        assert CampaignTotal.objects.get(campaign=campaign).total_minor == after
        assert CampaignTotal.objects.get(campaign=campaign).pending_minor == 0
