"""Recompute every counter (campaign totals, donation balances) from the ledger (the truth),
report drift, optionally repair."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from campaigns.models import Campaign, Donation, LedgerEntry
from campaigns.services import heartbeat, ledger, refunds


@dataclass(frozen=True)
class Drift:
    campaign: str
    field: str
    stored: int
    computed: int

    def __str__(self) -> str:
        return f"{self.campaign}: {self.field} stored {self.stored}, ledger says {self.computed}"


def totals_compute(*, campaign_id: int) -> dict[str, int]:
    """What the counters must be, by the rules in services/ledger.py."""
    entries = LedgerEntry.objects.filter(campaign_id=campaign_id)
    counted = entries.values("donation_id").annotate(net=Sum("delta_minor")).filter(net__gt=0)
    counted_ids = counted.values("donation_id")
    donors = (
        Donation.objects.filter(pk__in=counted_ids).values("donor_key").distinct().count()
    )
    pending = Donation.objects.filter(
        campaign_id=campaign_id, status=Donation.Status.PENDING, source__in=ledger.PENDING_SOURCES,
        pledge_confirmed_at__isnull=False,
    ).aggregate(s=Sum("amount_minor"))["s"]
    return {
        "total_minor": entries.aggregate(s=Sum("delta_minor"))["s"] or 0,
        "donation_count": counted.count(),
        "donor_count": donors,
        "pending_minor": pending or 0,
        "deferred_events": refunds.deferred_refunds_count(campaign_id=campaign_id),
    }


def _balance_drifts(*, campaign_id: int) -> dict[int, tuple[int, int]]:
    """Donations whose stored balance is not the sum of their ledger entries: {pk: (stored, ledger)}.
    One grouped query, compared in the database (a campaign may hold a million donations)."""
    rows = (
        Donation.objects.filter(campaign_id=campaign_id)
        .annotate(net=Coalesce(Sum("ledger__delta_minor"), 0))
        .exclude(balance_minor=F("net"))
        .values_list("pk", "balance_minor", "net")
    )
    return {pk: (balance, net) for pk, balance, net in rows}


def campaign_reconcile(*, campaign: Campaign, fix: bool = False) -> list[Drift]:
    """Compare under the counter's lock (no writer can move it meanwhile); repair if asked."""
    with transaction.atomic():
        total = ledger.total_lock(campaign_id=campaign.pk)
        computed = totals_compute(campaign_id=campaign.pk)
        drifts = [
            Drift(campaign.slug, name, getattr(total, name), value)
            for name, value in computed.items()
            if getattr(total, name) != value
        ]
        balances = _balance_drifts(campaign_id=campaign.pk)
        drifts += [
            Drift(campaign.slug, f"balance_minor of donation {pk}", stored, computed)
            for pk, (stored, computed) in sorted(balances.items())
        ]
        if drifts and fix:
            for pk, (_, computed_balance) in balances.items():
                Donation.objects.filter(pk=pk).update(balance_minor=computed_balance)
            for name, value in computed.items():
                setattr(total, name, value)
            ledger.total_save(total)
    return drifts


def totals_reconcile(*, slug: str | None = None, fix: bool = False) -> list[Drift]:
    campaigns = Campaign.objects.order_by("pk")
    if slug:
        campaigns = campaigns.filter(slug=slug)
    drifts: list[Drift] = []
    for campaign in campaigns:
        drifts.extend(campaign_reconcile(campaign=campaign, fix=fix))
    if not slug:
        # What /metrics reports as the last reconcile's drift (what is left of it after --fix).
        left = [] if fix else drifts
        heartbeat.heartbeat_record(
            key=heartbeat.RECONCILE,
            data={"drifts": len(left), "campaigns": sorted({drift.campaign for drift in left})},
        )
    return drifts
