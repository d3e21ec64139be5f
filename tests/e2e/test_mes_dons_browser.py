"""A monthly donor, in Chromium: opens *Mes dons* from the link of their receipt e-mail, changes the
amount, pauses and resumes (htmx, no reload), goes to Stripe's billing portal for the card and back,
then cancels; each change reaches the fake Stripe (real HTTP) and the database. Without JavaScript
the same forms work as plain posts."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from campaigns.models import AuditLog, Donation, Subscription
from campaigns.services import pledges, receipts
from tests import factories
from tests import test_mes_dons as mes_dons_tests
from tests.factories import ARTIFACTS
from tests.test_mes_dons import EMAIL, invoice_paid
from tests.test_stripe import post_stripe

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

NBSP = "\u00a0"


# The Stripe settings and the fake subscriptions API of the Mes dons tests.
fake_stripe = mes_dons_tests.fake_stripe


@pytest.fixture
def receipt_link(transactional_db, campaign, client, fake_stripe, live_server, settings) -> str:
    """Marie's monthly gift of 15 € (first instalment paid); the link of its receipt e-mail."""
    settings.PUBLIC_URL = live_server.url
    pledge = pledges.pledge_create(campaign=campaign, provider="stripe", amount_minor=1500, donor_email=EMAIL,
                                   donor_name="Marie Curie", frequency=Donation.Frequency.MONTHLY)
    post_stripe(client, invoice_paid("evt_in_1", "in_1", pledge, "subscription_create"))
    factories.process_all()
    assert receipts.receipts_send_due() == 1
    (message,) = mail.outbox
    return re.search(r"http://\S+/mes-dons/\S+/", message.body).group(0)


def test_a_monthly_donor_manages_their_gift_from_the_receipt_link(page, receipt_link, fake_stripe):
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_default_timeout(15_000)
    subscription = Subscription.objects.get()
    gift = page.locator(f"#monthly-{subscription.pk}")
    page.goto(receipt_link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Mes dons")
    expect(gift.get_by_role("heading", level=3)).to_have_text(f"Campagne de test — 15,00{NBSP}€ par mois")
    expect(gift.locator(".monthly-status")).to_have_text("Actif")

    gift.get_by_label("Nouveau montant mensuel (EUR)").fill("20")
    gift.get_by_role("button", name="Changer le montant").click()
    expect(gift.get_by_role("status")).to_contain_text(f"passe à 20,00{NBSP}€")
    expect(gift.get_by_role("heading", level=3)).to_contain_text(f"20,00{NBSP}€ par mois")

    gift.get_by_role("button", name="Mettre en pause").click()
    expect(gift.locator(".monthly-status")).to_have_text("En pause")
    gift.get_by_role("button", name="Reprendre mon don mensuel").click()
    expect(gift.locator(".monthly-status")).to_have_text("Actif")
    page.screenshot(path=str(ARTIFACTS / "mes-dons.png"), full_page=True)

    # The card is Stripe's business: its billing portal, then back to Mes dons.
    page.route("https://billing.stripe.test/**", lambda route: route.fulfill(
        content_type="text/html",
        body=f'<!doctype html><title>Portail</title><a href="{receipt_link}">Retour</a>'))
    gift.get_by_role("button", name="Changer de carte bancaire (Stripe)").click()
    page.wait_for_url("https://billing.stripe.test/p/session/bps_1")
    page.get_by_role("link", name="Retour").click()
    page.wait_for_url(receipt_link)

    gift.get_by_text("Arrêter mon don mensuel").click()
    gift.get_by_role("button", name="Confirmer l'arrêt").click()
    expect(gift.locator(".monthly-status")).to_have_text("Arrêté")
    expect(gift.get_by_role("status")).to_contain_text("est arrêté")
    expect(gift.get_by_role("button", name="Mettre en pause")).to_have_count(0)

    subscription.refresh_from_db()
    assert (subscription.status, subscription.amount_minor, subscription.version) == ("canceled", 2000, 5)
    assert [(r["method"], r["path"], r["key"]) for r in fake_stripe.requests] == [
        ("GET", "/v1/subscriptions/sub_1", ""),
        ("POST", "/v1/subscriptions/sub_1", f"jauge-sub-{subscription.pk}-v1-amount-2000"),
        ("POST", "/v1/subscriptions/sub_1", f"jauge-sub-{subscription.pk}-v2-pause"),
        ("POST", "/v1/subscriptions/sub_1", f"jauge-sub-{subscription.pk}-v3-resume"),
        ("POST", "/v1/billing_portal/sessions", fake_stripe.requests[4]["key"]),
        ("DELETE", "/v1/subscriptions/sub_1", f"jauge-sub-{subscription.pk}-v4-cancel"),
    ]
    assert list(AuditLog.objects.order_by("pk").values_list("action", flat=True)) == [
        "monthly_amount", "monthly_pause", "monthly_resume", "monthly_cancel"]


def test_without_javascript_the_forms_still_work(browser, receipt_link, fake_stripe):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        subscription = Subscription.objects.get()
        page.goto(receipt_link)
        gift = page.locator(f"#monthly-{subscription.pk}")
        gift.get_by_role("button", name="Mettre en pause").click()
        page.wait_for_load_state()
        expect(page.locator(f"#monthly-{subscription.pk} .monthly-status")).to_have_text("En pause")
        expect(page.get_by_role("status")).to_contain_text("est en pause")
        assert Subscription.objects.get().status == "paused"
    finally:
        context.close()


def test_a_tampered_link_shows_an_error_and_the_fresh_link_form(page, receipt_link):
    page.goto(receipt_link[:-4] + "xyz/")
    expect(page.get_by_role("alert")).to_contain_text("Ce lien n'est pas valide")
    expect(page.get_by_text("15,00")).to_have_count(0)
    page.get_by_label("Adresse e-mail utilisée pour donner").fill(EMAIL)
    page.get_by_role("button", name="Recevoir mon lien").click()
    expect(page.get_by_role("status")).to_contain_text("Si cette adresse a fait un don")
