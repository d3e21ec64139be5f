"""French tax receipts: one gapless sequence per year (threads, rollbacks), immutable receipts,
refunds that cancel and correct, refusals that issue nothing, the PDF, the donor's signed link."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.db import connection, transaction
from django.db.utils import DatabaseError

from campaigns.models import Donation, TaxReceipt, TaxReceiptLine, TaxReceiptSequence
from campaigns.selectors import tax_receipts as selectors
from campaigns.services import gdpr, pledges, tax_receipts
from campaigns.services.tax_receipts import TaxReceiptError
from tests import factories
from tests.staff_world import staff_world
from tests.tax_receipt_helpers import assert_gapless, gift, local, numbers, org_enable, pdf_text
from tests.threads import all_at_once

pytestmark = pytest.mark.django_db


@pytest.fixture
def org(db):
    return org_enable()


def issue(donation: Donation) -> TaxReceipt:
    return tax_receipts.tax_receipt_issue_for_gift(donation_id=donation.pk)


def test_each_year_has_its_own_sequence_starting_at_one(org, campaign):
    a = issue(gift(campaign, 2500, at=local(2025, 12, 31)))
    b = issue(gift(campaign, 5000, at=local(2026, 1, 1)))
    c = issue(gift(campaign, 1000, at=local(2026, 3, 2)))
    assert [a.number, b.number, c.number] == ["2025-000001", "2026-000001", "2026-000002"]
    assert_gapless(2025)
    assert_gapless(2026)


def test_issuing_twice_gives_the_same_receipt_and_takes_one_number(org, campaign):
    donation = gift(campaign, 2500, at=local(2026))
    assert issue(donation).pk == issue(donation).pk
    assert TaxReceiptSequence.objects.get(year=2026).last_number == 1


def test_the_receipt_snapshots_donor_issuer_amount_and_payment_method(org, campaign):
    receipt = issue(gift(campaign, 2550, at=local(2026, 5, 12), source=Donation.Source.MANUAL))
    assert receipt.amount_minor == 2550 and receipt.currency == "EUR"
    assert receipt.donor_name == "Marie Curie" and receipt.donor_address == "3 rue de l'Estrapade\n75005 Paris"
    assert receipt.issuer["legal_name"] == "Le Journal Indépendant SAS" and receipt.issuer["legal_basis"] == "200-press"
    assert receipt.payment_method == "cheque" and str(receipt.gift_date) == "2026-05-12"
    org.legal_name = "Nouveau nom"
    org.save()
    receipt.refresh_from_db()
    assert receipt.issuer["legal_name"] == "Le Journal Indépendant SAS"  # issued is issued


@pytest.mark.parametrize("case", ["pending", "failed", "refunded", "monthly", "no-address", "disabled", "dollars"])
def test_a_receipt_that_cannot_be_issued_is_refused_clearly_and_takes_no_number(org, campaign, case):
    if case in ("pending", "failed"):
        donation = pledges.pledge_create(campaign=campaign, provider="sandbox", amount_minor=2500,
                                         donor_name="Marie", donor_email="m@example.org", donor_address="1 rue",
                                         donor_postal_code="75001", donor_city="Paris")
        if case == "failed":
            factories.fail(donation.pk)
        expected = "not confirmed"
    elif case == "refunded":
        donation = gift(campaign, 2500)
        factories.refund(donation.pk)
        expected = "not confirmed"
    elif case == "monthly":
        donation, expected = gift(campaign, 2500, monthly=True), "yearly receipt"
    elif case == "no-address":
        donation, expected = gift(campaign, 2500, address=False), "postal address"
    elif case == "disabled":
        org.enabled = False
        org.save()
        donation, expected = gift(campaign, 2500), "not enabled"
    else:
        campaign.currency = "USD"
        campaign.save()
        donation, expected = gift(campaign, 2500), "euros"
    with pytest.raises(TaxReceiptError, match=expected):
        issue(donation)
    assert not TaxReceipt.objects.exists()
    assert not TaxReceiptSequence.objects.filter(last_number__gt=0).exists()


def test_a_rolled_back_transaction_leaves_no_gap(org, campaign):
    first, second = gift(campaign, 2500, at=local(2026)), gift(campaign, 3000, at=local(2026))
    with pytest.raises(RuntimeError), transaction.atomic():
        assert issue(first).number == "2026-000001"
        raise RuntimeError("the caller's transaction fails after the receipt was inserted")
    assert not TaxReceipt.objects.exists()
    assert issue(second).number == "2026-000001"
    assert issue(first).number == "2026-000002"
    assert_gapless(2026)


def test_a_receipt_cannot_be_changed_or_deleted_through_the_orm(org, campaign):
    receipt = issue(gift(campaign, 2500))
    receipt.amount_minor = 1
    with pytest.raises(TypeError, match="immutable"):
        receipt.save()
    with pytest.raises(TypeError, match="immutable"):
        receipt.delete()
    with pytest.raises(TypeError, match="immutable"):
        TaxReceipt.objects.filter(pk=receipt.pk).update(amount_minor=1)
    with pytest.raises(TypeError, match="immutable"):
        TaxReceipt.objects.filter(pk=receipt.pk).delete()
    with pytest.raises(TypeError, match="immutable"):
        TaxReceiptLine.objects.filter(receipt=receipt).update(amount_minor=1)


@pytest.mark.postgres
@pytest.mark.parametrize("sql", [
    "UPDATE campaigns_taxreceipt SET amount_minor = 1",
    "UPDATE campaigns_taxreceipt SET donor_name = 'X', cancelled_at = now()",
    "DELETE FROM campaigns_taxreceipt",
    "UPDATE campaigns_taxreceiptline SET amount_minor = 1",
])
def test_postgresql_refuses_any_change_but_a_cancellation(org, campaign, sql):
    if connection.vendor != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")
    receipt = issue(gift(campaign, 2500))
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    receipt.refresh_from_db()
    assert receipt.amount_minor == 2500 and receipt.cancelled_at is None
    # The one change allowed, once.
    assert TaxReceipt.objects.filter(pk=receipt.pk).cancel(at=receipt.issued_at, reason="test") == 1
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE campaigns_taxreceipt SET cancel_reason = 'again'")


def test_a_partial_refund_cancels_the_receipt_and_issues_a_corrected_one(org, campaign):
    donation = gift(campaign, 10000, at=local(2026))
    first = issue(donation)
    factories.refund(donation.pk, amount_minor=3000, refund_id="re_1")
    first.refresh_from_db()
    assert first.cancelled_at is not None and "refund re_1" in first.cancel_reason
    corrected = TaxReceipt.objects.active().get(donation=donation)
    assert (corrected.number, corrected.amount_minor, corrected.replaces_id) == ("2026-000002", 7000, first.pk)
    assert tax_receipts.receipt_in_force(first) == corrected
    # The rest refunded: cancelled, nothing left to certify, no new number.
    factories.refund(donation.pk, refund_id="re_2")
    corrected.refresh_from_db()
    assert corrected.cancelled_at is not None
    assert not TaxReceipt.objects.active().exists()
    assert TaxReceipt.objects.count() == 2
    assert_gapless(2026)


def test_a_correction_cancels_and_corrects_a_repeated_correction_changes_nothing_more(org, campaign):
    donation = gift(campaign, 5000, at=local(2026))
    issue(donation)
    factories.correct(donation.pk, delta_minor=-150, note="frais bancaires")
    receipt = TaxReceipt.objects.active().get(donation=donation)
    assert receipt.amount_minor == 4850 and "frais bancaires" in receipt.replaces.cancel_reason
    # An ungiven donation's correction (no receipt) issues nothing.
    other = gift(campaign, 1000, at=local(2026))
    factories.correct(other.pk, delta_minor=-100, note="frais")
    assert TaxReceipt.objects.filter(donation=other).count() == 0
    assert_gapless(2026)


def test_finance_cancels_a_receipt_issued_in_error_and_the_gift_can_be_receipted_again(org, campaign):
    donation = gift(campaign, 2500, at=local(2026))
    receipt = issue(donation)
    with pytest.raises(TaxReceiptError, match="reason"):
        tax_receipts.tax_receipt_cancel(receipt_id=receipt.pk, reason=" ")
    assert tax_receipts.tax_receipt_cancel(receipt_id=receipt.pk, reason="nom mal orthographié").cancelled_at
    assert tax_receipts.tax_receipt_cancel(receipt_id=receipt.pk, reason="encore") is None
    assert issue(donation).number == "2026-000002"


@pytest.mark.postgres
def test_concurrent_issuance_from_many_threads_stays_gapless(transactional_db, campaign):
    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections need PostgreSQL")
    org_enable()
    donations = [gift(campaign, 1000 + i, at=local(2026)) for i in range(24)]
    # Every gift asked twice, from different threads, all at once.
    work = [d.pk for d in donations] * 2

    def issue(thread: int) -> None:
        for pk in work[thread::6]:
            tax_receipts.tax_receipt_issue_for_gift(donation_id=pk)

    assert all_at_once(issue, 6) == []
    assert TaxReceipt.objects.count() == 24
    assert sorted(TaxReceipt.objects.values_list("donation_id", flat=True)) == sorted(d.pk for d in donations)
    assert numbers(2026) == list(range(1, 25))
    assert_gapless(2026)


def test_the_yearly_run_issues_one_summary_per_monthly_donor_and_each_one_off_gift(org, campaign):
    for month in range(1, 13):
        gift(campaign, 1000, at=local(2025, month, 5), monthly=True, email="anne@example.org", name="Anne")
    for month in (3, 4):
        gift(campaign, 2000, at=local(2025, month, 5), monthly=True, email="bob@example.org", name="Bob")
    gift(campaign, 2000, at=local(2025, 5, 5), monthly=True, email="zoe@example.org", name="Zoé", address=False)
    cheque = gift(campaign, 15000, at=local(2025, 7, 1), source=Donation.Source.MANUAL, email="c@example.org")
    gift(campaign, 9999, at=local(2026, 1, 2), monthly=True, email="anne@example.org", name="Anne")  # not 2025

    run = tax_receipts.tax_receipt_run_start(year=2025, started_by="finance")
    assert (run.to_do, run.skipped, run.issued) == (3, 1, 0)
    assert tax_receipts.tax_receipt_run_step(run_id=run.pk, batch_size=1) is True
    run.refresh_from_db()
    assert (run.status, run.issued) == ("done", 3)
    anne = TaxReceipt.objects.get(kind="yearly", donor_name="Anne")
    assert anne.amount_minor == 12000 and anne.lines.count() == 12 and str(anne.gift_date) == "2025-12-05"
    assert TaxReceipt.objects.get(kind="yearly", donor_name="Bob").amount_minor == 4000
    assert TaxReceipt.objects.get(kind="gift").donation == cheque
    assert_gapless(2025)
    assert not TaxReceipt.objects.filter(year=2026).exists()
    # Idempotent: a second run issues nothing new.
    again = tax_receipts.tax_receipt_run_start(year=2025)
    assert again.to_do == 0
    tax_receipts.tax_receipt_run_step(run_id=again.pk)
    assert TaxReceipt.objects.count() == 3
    # A refund of one instalment corrects the donor's summary (new number, 11 instalments).
    instalment = anne.lines.order_by("donation_id").first().donation
    factories.refund(instalment.pk, refund_id="re_x")
    corrected = TaxReceipt.objects.active().get(kind="yearly", donor_name="Anne")
    assert corrected.amount_minor == 11000 and corrected.lines.count() == 11 and corrected.replaces == anne
    assert_gapless(2025)


def test_a_run_for_a_future_year_or_with_receipts_off_is_refused(org):
    with pytest.raises(TaxReceiptError, match="year"):
        tax_receipts.tax_receipt_run_start(year=3000)
    org.enabled = False
    org.save()
    with pytest.raises(TaxReceiptError, match="not enabled"):
        tax_receipts.tax_receipt_run_start(year=2025)


def test_the_pdf_renders_the_cerfa_sections_and_the_amount_in_words(org, campaign):
    receipt = issue(gift(campaign, 2550, at=local(2026, 5, 12)))
    text = pdf_text(selectors.tax_receipt_pdf(receipt))
    for expected in ("Reçu au titre des dons", "11580", "2026-000001", "Bénéficiaire des versements",
                     "Le Journal Indépendant SAS", "123456789", "Donateur", "Marie Curie", "75005 Paris",
                     "25,50", "vingt-cinq euros et cinquante centimes", "12/05/2026", "200 du CGI",
                     "Déclaration de don manuel", "Numéraire", "carte bancaire", "Camille Martin"):
        assert expected in text, expected


@pytest.mark.parametrize(("amount", "words"), [
    (100, "un euro"), (2500, "vingt-cinq euros"), (2550, "vingt-cinq euros et cinquante centimes"),
    (1, "un centime"), (8000, "quatre-vingts euros"), (2007700, "vingt mille soixante-dix-sept euros"),
    (100000000, "un million d'euros"), (1000000001, "dix millions d'euros et un centime"),
])
def test_amounts_are_written_in_french_words(amount, words):
    assert selectors.amount_in_words_fr(amount) == words


@pytest.mark.parametrize(("rate", "ceiling", "amount", "cost"), [
    (66, None, 2500, 850), (66, None, 2555, 869), (75, None, 10000, 2500), (66, 100000, 200000, 134000),
    (0, None, 2500, 2500),
])
def test_the_cost_after_reduction_rounds_the_reduction_down_and_applies_the_ceiling(rate, ceiling, amount, cost):
    assert selectors.TaxRule(rate_percent=rate, ceiling_minor=ceiling).cost_minor(amount) == cost


def test_the_donor_link_opens_the_pdf_and_refuses_a_tampered_or_expired_one(org, campaign, client, monkeypatch):
    receipt = issue(gift(campaign, 2500))
    url = tax_receipts.tax_receipt_url(receipt=receipt).removeprefix("http://127.0.0.1:8000")
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF") and receipt.number in pdf_text(response.content)

    token = tax_receipts.tax_receipt_token(receipt=receipt)
    tampered = client.get(f"/recu-fiscal/{token.replace(receipt.number, '2026-000002')}/")
    assert tampered.status_code == 400 and "pas valide" in tampered.content.decode()
    assert client.get("/recu-fiscal/nimporte-quoi/").status_code == 400

    old = time.time() - 401 * 86400
    monkeypatch.setattr(signing.time, "time", lambda: old)
    expired_token = tax_receipts.tax_receipt_token(receipt=receipt)
    monkeypatch.undo()
    expired = client.get(f"/recu-fiscal/{expired_token}/?lang=en")
    assert expired.status_code == 410 and "expired" in expired.content.decode()


def test_the_link_of_a_cancelled_receipt_points_to_its_replacement(org, campaign, client):
    donation = gift(campaign, 10000, at=local(2026))
    first = issue(donation)
    factories.refund(donation.pk, amount_minor=2500, refund_id="re_1")
    response = client.get(f"/recu-fiscal/{tax_receipts.tax_receipt_token(receipt=first)}/")
    assert response.status_code == 410
    body = response.content.decode()
    assert first.number in body and "/recu-fiscal/" in body
    replacement = TaxReceipt.objects.active().get(donation=donation)
    assert tax_receipts.tax_receipt_token(receipt=replacement).split(":")[0] in body


def test_an_erasure_blanks_the_donors_address_and_keeps_the_receipts_issued(org, campaign):
    donation = gift(campaign, 2500, at=local(2026))
    receipt = issue(donation)
    gdpr.donor_erase(actor=staff_world()["finance"], donation_id=donation.pk, reason="demande du donateur")
    donation.refresh_from_db()
    assert (donation.donor_address, donation.donor_postal_code, donation.donor_city) == ("", "", "")
    receipt.refresh_from_db()
    assert receipt.donor_name == "Marie Curie" and receipt.cancelled_at is None  # a legal record, kept


def test_a_receipt_email_for_a_gift_without_an_address_asks_nothing_of_the_database(
        campaign, org, django_assert_num_queries):
    """Most providers' gifts carry no postal address: their receipt e-mail neither locks the gift
    nor takes a number (the receipts batch already read the settings)."""
    donation = gift(campaign, 2500, address=False)
    with django_assert_num_queries(0):
        assert tax_receipts.tax_receipt_issue_quietly(donation=donation, enabled=True) is None
    assert not TaxReceipt.objects.exists() and not TaxReceiptSequence.objects.exists()
