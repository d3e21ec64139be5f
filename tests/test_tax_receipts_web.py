"""Tax receipts where people meet them: the donation page (address, « ne vous coûte que »), the
receipt e-mail's link, and the admin (Finance: settings, PDF, issue, cancel, the yearly run)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from campaigns.models import Donation, TaxReceipt, TaxReceiptRun, TaxReceiptSequence, TaxReceiptSettings
from campaigns.services import pledges, receipts, tax_receipts
from tests import factories
from tests.staff_world import staff_world
from tests.tax_receipt_helpers import gift, local, org_enable, pdf_text

pytestmark = pytest.mark.django_db
NBSP = "\u00a0"


def post_gift(client, **fields):
    data = {"amount": "25", "frequency": "once", "name": "Marie Curie", "email": "marie@example.org",
            "provider": "sandbox", **fields}
    return client.post("/c/test-campaign/donate/", data)


# --- The donation page ---------------------------------------------------------------------------


def test_with_receipts_off_the_page_asks_no_address_and_promises_no_reduction(client, campaign):
    page = client.get("/c/test-campaign/").content.decode()
    assert 'name="postal_code"' not in page and "réduction d'impôt" not in page and "donate-tax.js" not in page


def test_with_receipts_on_the_page_asks_the_address_and_shows_the_cost_after_reduction(client, campaign):
    org_enable()
    page = client.get("/c/test-campaign/").content.decode()
    for name in ("address", "postal_code", "city"):
        assert f'name="{name}"' in page
    # No amount chosen yet: an example with the first preset (10,00 €).
    assert f"Un don de 10,00{NBSP}€ ne vous coûte que 3,40{NBSP}€ après réduction d&#x27;impôt" in page
    assert "donate-tax.js" in page and 'aria-live="polite"' in page
    english = client.get("/c/test-campaign/?lang=en").content.decode()
    assert "A gift of €10.00 only costs you €3.40 after tax reduction" in english
    assert "Postal address (for your tax receipt)" in english


def test_the_line_follows_the_amount_posted_when_the_form_comes_back_with_errors(client, campaign):
    org_enable(ceiling_minor=2000)
    response = post_gift(client, amount="25", name="")
    assert response.status_code == 400
    # 25 € with a ceiling of 20 €: 66 % of 20 € = 13,20 €, so 11,80 €.
    assert f"Ce don de 25,00{NBSP}€ ne vous coûte que 11,80{NBSP}€" in response.content.decode()


def test_an_address_given_is_stored_and_half_an_address_is_refused(client, campaign):
    org_enable()
    refused = post_gift(client, address="3 rue de l'Estrapade", postal_code="", city="Paris")
    assert refused.status_code == 400 and "Complétez l&#x27;adresse" in refused.content.decode()
    assert not Donation.objects.exists()
    assert post_gift(client, address=" 3 rue de l'Estrapade ", postal_code="75005", city="Paris").status_code == 302
    donation = Donation.objects.get()
    assert (donation.donor_address, donation.donor_postal_code, donation.donor_city) == (
        "3 rue de l'Estrapade", "75005", "Paris")


def test_with_receipts_off_an_address_posted_is_ignored(client, campaign):
    assert post_gift(client, address="3 rue", postal_code="75005", city="Paris").status_code == 302
    assert Donation.objects.get().donor_address == ""


# --- The receipt e-mail ------------------------------------------------------------------------------


def _confirmed_pledge(campaign, **fields) -> Donation:
    donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500, donor_name="Marie Curie",
                                     donor_email="marie@example.org", donor_address="3 rue de l'Estrapade",
                                     donor_postal_code="75005", donor_city="Paris", **fields)
    return factories.confirm(donation.pk)


def test_the_receipt_email_links_the_tax_receipt_that_opens_as_a_pdf(campaign, client):
    org_enable()
    donation = _confirmed_pledge(campaign)
    assert receipts.receipts_send_due() == 1
    receipt = TaxReceipt.objects.get(donation=donation)
    body = mail.outbox[0].body
    assert f"Votre reçu fiscal n° {receipt.number}" in body
    url = re.search(r"http://127\.0\.0\.1:8000(/recu-fiscal/\S+/)", body).group(1)
    assert "Marie Curie" in pdf_text(client.get(url).content)


def test_a_monthly_gift_email_announces_the_yearly_receipt_and_issues_none(campaign):
    org_enable()
    _confirmed_pledge(campaign, frequency=Donation.Frequency.MONTHLY)
    receipts.receipts_send_due()
    assert "reçu fiscal annuel" in mail.outbox[0].body
    assert not TaxReceipt.objects.exists()


def test_with_receipts_off_the_email_says_nothing_of_them(campaign):
    _confirmed_pledge(campaign)
    receipts.receipts_send_due()
    assert "reçu fiscal n°" not in mail.outbox[0].body and not TaxReceipt.objects.exists()


# --- The admin -------------------------------------------------------------------------------------


@pytest.fixture
def users(campaign):
    return staff_world()


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_finance_enables_receipts_only_with_the_organisations_details(users):
    finance = _as(users["finance"])
    assert finance.get("/admin/campaigns/taxreceiptsettings/")["Location"].endswith("/taxreceiptsettings/add/")
    form = {"enabled": "on", "legal_name": "", "address": "", "siren": "", "legal_basis": "200-press",
            "reduction_rate_percent": "66", "signatory": ""}
    refused = finance.post("/admin/campaigns/taxreceiptsettings/add/", form)
    assert refused.status_code == 200 and "Pour activer les reçus fiscaux, renseignez" in refused.content.decode()
    assert not TaxReceiptSettings.objects.exists()
    form.update(legal_name="Le Journal", address="1 rue\n75001 Paris", siren="123456789", signatory="C. Martin")
    assert finance.post("/admin/campaigns/taxreceiptsettings/add/", form).status_code == 302
    assert TaxReceiptSettings.current().enabled
    assert finance.get("/admin/campaigns/taxreceiptsettings/")["Location"].endswith("/taxreceiptsettings/1/change/")
    assert _as(users["editor"]).get("/admin/campaigns/taxreceiptsettings/1/change/").status_code == 403


def test_finance_downloads_the_pdf_and_an_editor_cannot(users, campaign):
    org_enable()
    receipt = factories_issue(campaign)
    response = _as(users["finance"]).get(f"/admin/campaigns/taxreceipt/{receipt.pk}/pdf/")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    assert receipt.number in pdf_text(response.content)
    assert _as(users["editor"]).get(f"/admin/campaigns/taxreceipt/{receipt.pk}/pdf/").status_code == 403


def factories_issue(campaign) -> TaxReceipt:
    return tax_receipts.tax_receipt_issue_for_gift(donation_id=gift(campaign, 2500, at=local(2026)).pk)


def test_finance_asking_a_receipt_for_a_pending_gift_gets_an_error_and_nothing_is_issued(users, campaign):
    org_enable()
    pending = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500, donor_name="M",
                                    donor_email="m@example.org")
    response = _as(users["finance"]).post("/admin/campaigns/taxreceipt/issue/", {"donation": pending.reference},
                                          follow=True)
    assert "Aucun reçu émis" in response.content.decode() and "not confirmed" in response.content.decode()
    unknown = _as(users["finance"]).post("/admin/campaigns/taxreceipt/issue/", {"donation": "JG-nope"}, follow=True)
    assert "Aucun don" in unknown.content.decode()
    assert not TaxReceipt.objects.exists() and not TaxReceiptSequence.objects.exists()
    assert _as(users["editor"]).post("/admin/campaigns/taxreceipt/issue/", {"donation": pending.pk}).status_code == 403


def test_finance_issues_then_cancels_a_receipt_from_the_admin(users, campaign):
    org_enable()
    donation = gift(campaign, 2500, at=local(2026))
    finance = _as(users["finance"])
    response = finance.post("/admin/campaigns/taxreceipt/issue/", {"donation": str(donation.pk)})
    receipt = TaxReceipt.objects.get()
    assert response["Location"].endswith(f"/taxreceipt/{receipt.pk}/change/")
    assert "Annuler le reçu" in finance.get(response["Location"]).content.decode()
    finance.post(f"/admin/campaigns/taxreceipt/{receipt.pk}/cancel/", {"reason": ""})
    receipt.refresh_from_db()
    assert receipt.cancelled_at is None  # no reason, no cancellation
    finance.post(f"/admin/campaigns/taxreceipt/{receipt.pk}/cancel/", {"reason": "erreur de nom"})
    receipt.refresh_from_db()
    assert receipt.cancelled_at is not None and receipt.cancel_reason == "erreur de nom"


def test_finance_starts_the_yearly_run_and_sees_its_progress(users, campaign, django_capture_on_commit_callbacks):
    org_enable()
    for month in (1, 2, 3):
        gift(campaign, 1000, at=local(2025, month), monthly=True)
    finance = _as(users["finance"])
    assert finance.post("/admin/campaigns/taxreceipt/run/", {"year": "deux mille"}).status_code == 400
    assert finance.post("/admin/campaigns/taxreceipt/run/", {"year": "3000"}).status_code == 400
    assert not TaxReceiptRun.objects.exists()
    with django_capture_on_commit_callbacks() as callbacks:
        response = finance.post("/admin/campaigns/taxreceipt/run/", {"year": "2025"})
    run = TaxReceiptRun.objects.get()
    assert response["Location"].endswith(f"/taxreceipt/run/{run.pk}/") and len(callbacks) == 1
    bar = finance.get(f"/admin/campaigns/taxreceipt/run/{run.pk}/progress/").content.decode()
    assert "0 reçu(s) émis sur 1" in bar and "every 1s" in bar
    tax_receipts.tax_receipt_run_step(run_id=run.pk)
    bar = finance.get(f"/admin/campaigns/taxreceipt/run/{run.pk}/progress/").content.decode()
    assert "1 reçu(s) émis sur 1" in bar and "every 1s" not in bar and 'value="100"' in bar
    assert _as(users["editor"]).get(f"/admin/campaigns/taxreceipt/run/{run.pk}/progress/").status_code == 403


def test_yearly_summaries_and_corrected_receipts_are_emailed_once_with_their_link(campaign, client,
                                                                                   django_capture_on_commit_callbacks):
    org_enable()
    for month in (1, 2):
        gift(campaign, 1000, at=local(2025, month), monthly=True)
    gift(campaign, 1000, at=local(2025, 3), monthly=True, email="", name="Sans Courriel")
    one_off = gift(campaign, 5000, at=local(2025, 4), email="paul@example.org", name="Paul")
    run = tax_receipts.tax_receipt_run_start(year=2025)
    with django_capture_on_commit_callbacks():
        tax_receipts.tax_receipt_run_step(run_id=run.pk)
    assert tax_receipts.tax_receipt_emails_send() == 1  # Marie's summary; the one-off's first receipt is not
    message = mail.outbox[0]
    summary = TaxReceipt.objects.get(kind="yearly", donor_name="Marie Curie")
    assert message.to == ["marie@example.org"] and summary.number in message.subject
    assert "dons mensuels de 2025" in message.body
    url = re.search(r"http://127\.0\.0\.1:8000(/recu-fiscal/\S+/)", message.body).group(1)
    assert summary.number in pdf_text(client.get(url).content)
    # Like every receipt e-mail, it opens the donor's *Mes dons*, which lists this receipt.
    gifts = re.search(r"http://127\.0\.0\.1:8000(/mes-dons/\S+/)", message.body).group(1)
    assert summary.number in client.get(gifts).content.decode()
    nobody = TaxReceipt.objects.get(kind="yearly", donor_name="Sans Courriel")
    assert nobody.delivery.error == "no e-mail address"
    assert tax_receipts.tax_receipt_emails_send() == 0  # once
    # A refund corrects Paul's receipt: the corrected one is e-mailed, naming the one it replaces.
    with django_capture_on_commit_callbacks():
        factories.refund(one_off.pk, amount_minor=1000, refund_id="re_1")
    assert tax_receipts.tax_receipt_emails_send() == 1
    assert mail.outbox[1].to == ["paul@example.org"]
    assert "annule et remplace le reçu n° 2025-" in mail.outbox[1].body


def test_an_english_donors_receipt_links_open_their_pages_in_english(campaign, client,
                                                                      django_capture_on_commit_callbacks):
    # The download page speaks only when the link fails (cancelled, expired, tampered): to a donor
    # who gave in English it must say so in English, from the receipt e-mail as from Mes dons.
    org_enable()
    donation = _confirmed_pledge(campaign, locale="en")
    assert receipts.receipts_send_due() == 1
    receipt = TaxReceipt.objects.get(donation=donation)
    body = mail.outbox[0].body
    url = re.search(r"http://127\.0\.0\.1:8000(/recu-fiscal/\S+)", body).group(1)
    gifts = re.search(r"http://127\.0\.0\.1:8000(/mes-dons/\S+/)", body).group(1)
    page = client.get(gifts).content.decode()
    listed = re.search(r'href="http://127\.0\.0\.1:8000(/recu-fiscal/[^"]+)"', page).group(1)
    assert "Marie Curie" in pdf_text(client.get(url).content)
    with django_capture_on_commit_callbacks():
        factories.refund(donation.pk, amount_minor=500, refund_id="re_1")
    for link in (url, listed.replace("&amp;", "&")):
        page = client.get(link)
        assert page.status_code == 410
        assert f"Receipt no. {receipt.number} was cancelled" in page.content.decode()
    # The corrected receipt's own e-mail links it in English too.
    assert tax_receipts.tax_receipt_emails_send() == 1
    corrected = re.search(r"http://127\.0\.0\.1:8000(/recu-fiscal/\S+)", mail.outbox[1].body).group(1)
    assert "lang=en" in corrected


def test_every_answer_of_a_receipt_link_is_kept_out_of_search_engines_and_caches(campaign, client):
    # The URL is the key to a receipt (name, address, amount): whatever it answers — the PDF, or the
    # page of a cancelled, expired or tampered link, which may link the replacement — is private.
    org_enable()
    donation = _confirmed_pledge(campaign)
    receipt = tax_receipts.tax_receipt_issue_for_gift(donation_id=donation.pk)
    url = tax_receipts.tax_receipt_url(receipt=receipt).removeprefix("http://127.0.0.1:8000")
    assert client.get(url)["X-Robots-Tag"] == "noindex"
    factories.refund(donation.pk, amount_minor=500, refund_id="re_1")
    for link, status in ((url, 410), (url.replace("/recu-fiscal/", "/recu-fiscal/x"), 400)):
        page = client.get(link)
        assert page.status_code == status
        assert page["X-Robots-Tag"] == "noindex" and "no-cache" in page["Cache-Control"]


def test_a_corrected_receipt_for_a_gift_without_a_language_is_mailed_in_its_campaigns(campaign):
    # A provider's gift carries no language: its receipt e-mail speaks the campaign's
    # (services/receipts.py); the corrected tax receipt's e-mail must say the same.
    from campaigns.models import Campaign

    Campaign.objects.filter(pk=campaign.pk).update(locale="en")
    org_enable()
    donation = gift(campaign, 5000, at=local(2025, 4))
    assert donation.locale == ""
    tax_receipts.tax_receipt_issue_for_gift(donation_id=donation.pk)
    factories.refund(donation.pk, amount_minor=1000, refund_id="re_1")
    assert tax_receipts.tax_receipt_emails_send() == 1
    assert "Here is your corrected tax receipt" in mail.outbox[0].body
    assert "lang=en" in mail.outbox[0].body
