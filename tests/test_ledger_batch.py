"""The batch confirm (`ledger.donations_confirm`, a bank statement's batch): the same counter as
confirming each pledge in turn, each pledge counted once, donors counted once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignTotal, Donation, LedgerEntry
from campaigns.services import ledger
from campaigns.services.campaigns import campaign_upsert
from campaigns.services.reconcile import campaign_reconcile
from tests import factories

pytestmark = pytest.mark.django_db

# (external id, amount, e-mail): marie gives twice in the batch and once before it, paul twice in
# the batch, two anonymous pledges (no e-mail), and one pledge confirmed before the batch.
PLEDGES = [("p1", 1000, "marie@example.org"), ("p2", 2500, "paul@example.org"), ("p3", 700, ""),
           ("p4", 1200, "marie@example.org"), ("p5", 900, "paul@example.org"), ("p6", 300, ""),
           ("p7", 4000, "jeanne@example.org")]


def _other_campaign(slug: str) -> Campaign:
    now = timezone.now()
    campaign, _ = campaign_upsert(slug=slug, defaults={
        "title": slug, "goal_minor": 1_000_000, "currency": "EUR", "starts_at": now - timedelta(days=1),
        "ends_at": now + timedelta(days=29), "status": Campaign.Status.ACTIVE})
    return campaign


def _world(campaign: Campaign) -> list[Donation]:
    """Marie's earlier gift, the pending bank pledges (their donors confirmed them: pending money),
    and p7 confirmed before the batch."""
    factories.record(campaign, f"{campaign.slug}:earlier", 5000, "marie@example.org")
    pledges = []
    for external_id, amount, email in PLEDGES:
        pledge, _ = ledger.donation_create(campaign=campaign, source=Donation.Source.BANK,
                                           external_id=f"{campaign.slug}:{external_id}", amount_minor=amount,
                                           currency="EUR", donor_email=email, pledge_confirmed_at=timezone.now())
        pledges.append(pledge)
    factories.confirm(pledges[-1].pk)
    return pledges


def _locked(campaign: Campaign, ids: list[int]) -> tuple[CampaignTotal, dict[int, Donation]]:
    total = ledger.total_lock(campaign_id=campaign.pk)
    return total, {d.pk: d for d in Donation.objects.select_for_update().filter(pk__in=ids)}


def _counter(campaign: Campaign) -> tuple[int, int, int, int]:
    c = factories.counter(campaign)
    return c.total_minor, c.donation_count, c.donor_count, c.pending_minor


def test_a_batch_confirm_counts_each_pledge_once_and_each_donor_once_as_one_by_one_would(campaign):
    batch_pledges = _world(campaign)
    twin = _other_campaign("twin")
    single_pledges = _world(twin)
    at = timezone.now()
    # The batch lists p2 twice and p7 (already paid): each counts once, p7 not again.
    order = [0, 1, 2, 3, 1, 4, 5, 6]

    with transaction.atomic():
        total, locked = _locked(campaign, [p.pk for p in batch_pledges])
        done = ledger.donations_confirm(total=total, confirmations=[(locked[batch_pledges[i].pk], at) for i in order])
    with transaction.atomic():
        total, locked = _locked(twin, [p.pk for p in single_pledges])
        for i in order:
            ledger.donation_confirm(total=total, donation=locked[single_pledges[i].pk], at=at)

    assert [d.pk for d in done] == [batch_pledges[i].pk for i in (0, 1, 2, 3, 4, 5)]
    # Σ = earlier 5000 + p7 4000 + the six pledges 6600; marie, paul, jeanne + two anonymous donors.
    assert _counter(campaign) == (15600, 8, 5, 0)
    assert _counter(campaign) == _counter(twin)
    for pledge in batch_pledges:
        pledge.refresh_from_db()
        assert (pledge.status, pledge.balance_minor) == (Donation.Status.CONFIRMED, pledge.amount_minor)
        assert LedgerEntry.objects.filter(donation=pledge).count() == 1
    assert Donation.objects.get(pk=batch_pledges[0].pk).confirmed_at == at
    assert campaign_reconcile(campaign=campaign) == []
    assert campaign_reconcile(campaign=twin) == []


def test_confirming_the_same_batch_again_changes_nothing(campaign):
    pledges = _world(campaign)
    at = timezone.now()
    for _ in range(2):
        with transaction.atomic():
            total, locked = _locked(campaign, [p.pk for p in pledges])
            done = ledger.donations_confirm(total=total, confirmations=[(d, at) for d in locked.values()])

    assert done == []
    assert _counter(campaign) == (15600, 8, 5, 0)
    assert LedgerEntry.objects.filter(campaign=campaign).count() == 8
    assert campaign_reconcile(campaign=campaign) == []


def test_a_pledge_of_another_campaign_is_refused_and_nothing_moves(campaign):
    pledges = _world(campaign)
    other = _other_campaign("other")
    stranger, _ = ledger.donation_create(campaign=other, source=Donation.Source.BANK, external_id="other:1",
                                         amount_minor=100, currency="EUR")
    before = _counter(campaign)

    with pytest.raises(ledger.LedgerError, match="not a saved donation of campaign"), transaction.atomic():
        total, locked = _locked(campaign, [pledges[0].pk])
        ledger.donations_confirm(total=total, confirmations=[(locked[pledges[0].pk], None),
                                                             (stranger, None)])

    assert _counter(campaign) == before
    assert Donation.objects.get(pk=pledges[0].pk).status == Donation.Status.PENDING
    assert campaign_reconcile(campaign=campaign) == []
