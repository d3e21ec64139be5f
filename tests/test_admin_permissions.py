"""Permission matrix: each role is allowed or refused the right pages and actions."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns.models import AuditLog, CampaignTotal, Donation, LedgerEntry, PaymentEvent
from campaigns.services import ledger
from tests.staff_world import staff_world

ALL_STAFF = {"superuser", "editor", "finance"}
FINANCE = {"superuser", "finance"}
EDITORS = {"superuser", "editor"}

# page → roles allowed (everyone else logged in gets 403; anonymous goes to the login page).
MATRIX = {
    "/admin/campaigns/campaign/": ALL_STAFF,
    "/admin/campaigns/campaign/add/": EDITORS,
    "/admin/campaigns/campaign/{campaign}/change/": ALL_STAFF,
    "/admin/campaigns/donation/": ALL_STAFF,
    "/admin/campaigns/donation/{donation}/change/": ALL_STAFF,
    "/admin/campaigns/donation/manual/": FINANCE,
    "/admin/campaigns/donation/{donation}/refund/": FINANCE,
    "/admin/campaigns/donation/{donation}/correct/": FINANCE,
    "/admin/campaigns/donation/{donation}/erase/": FINANCE,
    "/admin/campaigns/donation/export.csv": FINANCE,
    "/admin/campaigns/paymentevent/": FINANCE,
    "/admin/campaigns/ledgerentry/": FINANCE,
    "/admin/campaigns/auditlog/": FINANCE,
    "/admin/campaigns/campaigntotal/": ALL_STAFF,
    "/admin/campaigns/statementimport/": FINANCE,
    "/admin/campaigns/statementimport/upload/": FINANCE,
    "/admin/campaigns/statementimport/review/": FINANCE,
    "/admin/campaigns/statementline/": FINANCE,
    "/admin/campaigns/csvprofile/": FINANCE,
    "/admin/campaigns/taxreceipt/": FINANCE,
    "/admin/campaigns/taxreceipt/run/": FINANCE,
    "/admin/campaigns/taxreceiptsettings/add/": FINANCE,
    "/dashboard/": ALL_STAFF,
    "/dashboard/{slug}/": ALL_STAFF,
    "/dashboard/{slug}/live/": ALL_STAFF,
}
ROLES = ("superuser", "editor", "finance", "staff", "anonymous")


@pytest.fixture
def world(campaign):
    users = staff_world()
    donation, _ = ledger.donation_record(
        campaign=campaign, source=Donation.Source.MANUAL, external_id="cheque:1", amount_minor=5000
    )
    return {"users": users, "campaign": campaign, "donation": donation}


def _client(world, role: str) -> Client:
    client = Client()
    user = world["users"][role]
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_its_pages(world, role):
    client = _client(world, role)
    fmt = {"campaign": world["campaign"].pk, "donation": world["donation"].pk, "slug": world["campaign"].slug}
    outcomes = {}
    for pattern, allowed in MATRIX.items():
        response = client.get(pattern.format(**fmt))
        expected = 302 if role == "anonymous" else 200 if role in allowed else 403
        outcomes[pattern] = (response.status_code, expected)
        if role == "anonymous":
            assert "/login/" in response["Location"], pattern
    wrong = {page: got for page, got in outcomes.items() if got[0] != got[1]}
    assert not wrong, f"{role}: (got, expected) {wrong}"


@pytest.mark.parametrize("role", ["editor", "staff", "anonymous"])
def test_money_actions_are_refused_without_the_finance_role_and_move_nothing(world, role):
    client = _client(world, role)
    donation, campaign = world["donation"], world["campaign"]
    before = (CampaignTotal.objects.get(campaign=campaign).total_minor, LedgerEntry.objects.count())
    responses = [
        client.post(f"/admin/campaigns/donation/{donation.pk}/refund/", {"amount": "10", "reason": "test"}),
        client.post(f"/admin/campaigns/donation/{donation.pk}/correct/", {"delta": "-10", "reason": "test"}),
        client.post("/admin/campaigns/donation/manual/", {
            "campaign": campaign.pk, "method": "cash", "amount": "20", "received_at": "2026-11-24 10:00"}),
        client.post(f"/admin/campaigns/donation/{donation.pk}/erase/", {"reason": "test", "confirm": "on"}),
    ]
    assert all(r.status_code in (302, 403) for r in responses)
    if role != "anonymous":
        assert all(r.status_code == 403 for r in responses)
    assert (CampaignTotal.objects.get(campaign=campaign).total_minor, LedgerEntry.objects.count()) == before
    assert not AuditLog.objects.exists()
    assert Donation.objects.get(pk=donation.pk).donor_key == donation.donor_key


def test_editor_cannot_retry_events_but_finance_can(world, campaign):
    event = PaymentEvent.objects.create(
        provider="generic", event_id="evt_x", body="{}", status=PaymentEvent.Status.FAILED, last_error="boom"
    )
    payload = {"action": "retry_events", "_selected_action": [event.pk]}
    editor = _client(world, "editor")
    assert editor.post("/admin/campaigns/paymentevent/", payload).status_code == 403
    event.refresh_from_db()
    assert event.status == PaymentEvent.Status.FAILED

    finance = _client(world, "finance")
    response = finance.post("/admin/campaigns/paymentevent/", payload)
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.status == PaymentEvent.Status.RECEIVED
    entry = AuditLog.objects.get()
    assert (entry.action, entry.actor, entry.reason) == ("event_retry", world["users"]["finance"], "boom")


def test_no_one_adds_donations_or_edits_the_books_through_the_stock_admin(world):
    client = _client(world, "superuser")
    entry = LedgerEntry.objects.get()
    assert client.get("/admin/campaigns/donation/add/").status_code == 403
    assert client.get("/admin/campaigns/ledgerentry/add/").status_code == 403
    assert client.post(f"/admin/campaigns/ledgerentry/{entry.pk}/change/", {"delta_minor": 1}).status_code == 403
    assert client.post(f"/admin/campaigns/ledgerentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    total = CampaignTotal.objects.get(campaign=world["campaign"])
    assert client.post(f"/admin/campaigns/campaigntotal/{total.pk}/change/", {"total_minor": 1}).status_code == 403
    assert client.post(f"/admin/campaigns/donation/{world['donation'].pk}/delete/", {"post": "yes"}).status_code == 403
    assert LedgerEntry.objects.get().delta_minor == 5000


def test_admin_index_links_to_the_dashboard_and_failed_events(world):
    page = _client(world, "finance").get("/admin/").content.decode()
    assert 'href="/dashboard/"' in page
    assert "status__exact=failed" in page
    staff_page = _client(world, "staff").get("/admin/").content.decode()
    assert 'href="/dashboard/"' not in staff_page
