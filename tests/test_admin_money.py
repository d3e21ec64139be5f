"""Money through the admin: manual entries, refunds and corrections append ledger entries
and move the total exactly; amounts are never edited in place; every move is audited."""

from __future__ import annotations

import pytest
from django.db.models import Sum
from django.test import Client

from campaigns.models import AuditLog, Campaign, CampaignTotal, Donation, LedgerEntry
from campaigns.services import ledger, pledge_verification
from campaigns.services.reconcile import campaign_reconcile
from tests import factories
from tests.staff_world import staff_world


@pytest.fixture
def users(db):
    return staff_world()


@pytest.fixture
def finance(users) -> Client:
    client = Client()
    client.force_login(users["finance"])
    return client


def _total(campaign: Campaign) -> int:
    return CampaignTotal.objects.get(campaign=campaign).total_minor


def _ledger_sum(campaign: Campaign) -> int:
    return LedgerEntry.objects.filter(campaign=campaign).aggregate(s=Sum("delta_minor"))["s"] or 0


def test_a_cheque_entered_in_the_admin_moves_the_total_exactly_and_is_audited(campaign, finance, users):
    response = finance.post("/admin/campaigns/donation/manual/", {
        "campaign": campaign.pk, "method": "cheque", "amount": "150,50", "received_at": "2026-11-20 09:30",
        "number": "0012345", "donor_name": "Émile Zola", "donor_email": "emile@example.org", "note": "courrier",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    donation = Donation.objects.get(source=Donation.Source.MANUAL)
    assert (donation.amount_minor, donation.status, donation.external_id) == (15050, "confirmed", "cheque:0012345")
    assert _total(campaign) == 15050 == _ledger_sum(campaign)
    assert list(donation.ledger.values_list("kind", "delta_minor")) == [("confirm", 15050)]
    audit = AuditLog.objects.get()
    assert (audit.action, audit.actor, audit.amount_minor, audit.reason) == (
        "manual_entry", users["finance"], 15050, "courrier")
    assert audit.details["method"] == "cheque"
    assert not campaign_reconcile(campaign=campaign)


def test_the_same_cheque_entered_twice_is_refused_and_counted_once(campaign, finance):
    data = {"campaign": campaign.pk, "method": "cheque", "amount": "50", "received_at": "2026-11-20 09:30",
            "number": "777"}
    assert finance.post("/admin/campaigns/donation/manual/", data).status_code == 302
    again = finance.post("/admin/campaigns/donation/manual/", data)
    assert again.status_code == 200
    assert "« 777 » est déjà enregistré" in again.content.decode()
    assert _total(campaign) == 5000
    assert AuditLog.objects.count() == 1


def test_a_bad_amount_is_a_clear_error_and_changes_nothing(campaign, finance):
    for amount in ("abc", "0", "12,345", ""):
        response = finance.post("/admin/campaigns/donation/manual/", {
            "campaign": campaign.pk, "method": "cash", "amount": amount, "received_at": "2026-11-20 09:30"})
        assert response.status_code == 200
        assert 'class="errorlist' in response.content.decode()
    assert not Donation.objects.exists()
    assert _total(campaign) == 0


def _gift(campaign, amount_minor=10_000, external_id="cheque:1"):
    donation, _ = ledger.donation_record(
        campaign=campaign, source=Donation.Source.MANUAL, external_id=external_id, amount_minor=amount_minor,
        donor_name="Marie", donor_email="marie@example.org",
    )
    return donation


def test_a_partial_then_full_refund_append_entries_and_move_the_total_exactly(campaign, finance, users):
    donation = _gift(campaign)
    url = f"/admin/campaigns/donation/{donation.pk}/refund/"
    assert finance.post(url, {"amount": "30", "reason": "doublon partiel"}).status_code == 302
    assert _total(campaign) == 7000
    assert finance.post(url, {"amount": "", "reason": "annulation"}).status_code == 302
    assert _total(campaign) == 0 == _ledger_sum(campaign)
    donation.refresh_from_db()
    assert (donation.status, donation.refunded_minor, donation.amount_minor) == ("refunded", 10_000, 10_000)
    assert list(donation.ledger.order_by("id").values_list("kind", "delta_minor")) == [
        ("confirm", 10_000), ("refund", -3000), ("refund", -7000)]
    assert list(AuditLog.objects.order_by("id").values_list("action", "amount_minor", "reason")) == [
        ("refund", -3000, "doublon partiel"), ("refund", -7000, "annulation")]
    assert CampaignTotal.objects.get(campaign=campaign).donation_count == 0
    assert not campaign_reconcile(campaign=campaign)


def test_refunding_more_than_is_left_or_without_a_reason_is_refused(campaign, finance):
    donation = _gift(campaign)
    url = f"/admin/campaigns/donation/{donation.pk}/refund/"
    too_much = finance.post(url, {"amount": "100,01", "reason": "trop"})
    assert too_much.status_code == 200 and "left to refund" in too_much.content.decode()
    no_reason = finance.post(url, {"amount": "10", "reason": "  "})
    assert no_reason.status_code == 200
    assert _total(campaign) == 10_000
    assert LedgerEntry.objects.count() == 1
    assert not AuditLog.objects.exists()


def test_a_correction_appends_an_entry_and_keeps_the_given_amount(campaign, finance):
    donation = _gift(campaign, amount_minor=5000)
    url = f"/admin/campaigns/donation/{donation.pk}/correct/"
    assert finance.post(url, {"delta": "-4,50", "reason": "frais bancaires"}).status_code == 302
    assert _total(campaign) == 4550 == _ledger_sum(campaign)
    donation.refresh_from_db()
    assert donation.amount_minor == 5000
    assert donation.ledger.filter(kind="correction").get().delta_minor == -450
    below_zero = finance.post(url, {"delta": "-100", "reason": "trop"})
    assert below_zero.status_code == 200 and "below zero" in below_zero.content.decode()
    assert _total(campaign) == 4550
    assert AuditLog.objects.get().amount_minor == -450


def test_amounts_cannot_be_edited_in_place_through_the_admin(campaign, finance):
    donation = _gift(campaign)
    page = finance.get(f"/admin/campaigns/donation/{donation.pk}/change/").content.decode()
    assert 'name="amount_minor"' not in page and 'name="refunded_minor"' not in page
    assert 'name="donor_name"' in page
    response = finance.post(f"/admin/campaigns/donation/{donation.pk}/change/", {
        "donor_name": "Marie C.", "amount_minor": "1", "refunded_minor": "5000", "status": "failed",
        "campaign": campaign.pk, "currency": "USD", "message": "",
        "ledger-TOTAL_FORMS": "0", "ledger-INITIAL_FORMS": "1", "ledger-MIN_NUM_FORMS": "0",
        "ledger-MAX_NUM_FORMS": "1000",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    donation.refresh_from_db()
    assert donation.donor_name == "Marie C."
    assert (donation.amount_minor, donation.refunded_minor, donation.status, donation.currency) == (
        10_000, 0, "confirmed", "EUR")
    assert _total(campaign) == 10_000


def test_the_donation_list_shows_the_ledger_total_of_the_filtered_set(campaign, finance):
    _gift(campaign, 1000, "cheque:a")
    _gift(campaign, 2500, "cash:b")
    page = finance.get("/admin/campaigns/donation/").content.decode()
    assert "35,00\u00a0€" in page
    filtered = finance.get("/admin/campaigns/donation/", {"q": "cash:b"}).content.decode()
    assert 'id="filtered-total"' in filtered and "25,00\u00a0€" in filtered and "35,00" not in filtered


def test_a_double_submitted_form_without_a_number_counts_once(campaign, finance):
    page = finance.get(f"/admin/campaigns/donation/manual/?campaign={campaign.pk}").content.decode()
    assert 'type="hidden" name="entry_key"' in page
    data = {"campaign": campaign.pk, "method": "cash", "amount": "20", "received_at": "2026-11-20 09:30",
            "entry_key": "form-shown-once"}
    assert finance.post("/admin/campaigns/donation/manual/", data).status_code == 302
    again = finance.post("/admin/campaigns/donation/manual/", data)
    assert again.status_code == 200 and "Déjà enregistré" in again.content.decode()
    assert _total(campaign) == 2000 and Donation.objects.count() == 1


def test_a_received_transfer_settles_its_pending_pledge_instead_of_adding_a_gift(campaign, finance):
    pledge, _ = ledger.donation_create(campaign=campaign, source=Donation.Source.BANK, external_id="JG-7K3F9XA",
                                       reference="JG-7K3F9XA", amount_minor=4000, currency="EUR")
    pledge_verification.pledge_confirm_by_donor(token=pledge_verification.pledge_confirm_token(donation=pledge))
    assert CampaignTotal.objects.get(campaign=campaign).pending_minor == 4000
    data = {"campaign": campaign.pk, "method": "transfer", "amount": "35", "received_at": "2026-11-20 09:30",
            "pledge_reference": "jg-7k3f9xa"}
    wrong = finance.post("/admin/campaigns/donation/manual/", data)
    assert wrong.status_code == 200 and "differs from pledge" in wrong.content.decode()
    assert _total(campaign) == 0
    data["amount"] = "40"
    assert finance.post("/admin/campaigns/donation/manual/", data).status_code == 302
    pledge.refresh_from_db()
    totals = CampaignTotal.objects.get(campaign=campaign)
    assert (pledge.status, totals.total_minor, totals.pending_minor) == ("confirmed", 4000, 0)
    assert Donation.objects.count() == 1
    assert AuditLog.objects.get().details["settled_pledge"] == "JG-7K3F9XA"
    assert not campaign_reconcile(campaign=campaign)
    again = finance.post("/admin/campaigns/donation/manual/", data)
    assert again.status_code == 200 and _total(campaign) == 4000


def test_a_corrected_gift_shows_what_the_ledger_holds_and_is_not_refundable_at_zero(campaign, finance):
    donation, _ = ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cheque:77",
                                         amount_minor=2500)
    factories.correct(donation.pk, delta_minor=-200, note="frais bancaires")
    listing = finance.get("/admin/campaigns/donation/").content.decode()
    assert "23,00\xa0€" in listing and "25,00\xa0€" in listing  # the amount given, and what counts
    factories.correct(donation.pk, delta_minor=-2300, note="chèque sans provision")
    page = finance.get(f"/admin/campaigns/donation/{donation.pk}/change/").content.decode()
    assert f"/admin/campaigns/donation/{donation.pk}/refund/" not in page
