"""Recompute every counter (campaign totals, donation balances and matches) from the ledger (the
truth), report drift, optionally repair. A gift matched twice is reported, never repaired: the
ledger is append-only, the fix is a correction an editor decides."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce

from campaigns.models import Campaign, Donation, LedgerEntry
from campaigns.services import heartbeat, ledger, refunds


@dataclass(frozen=True)
class Drift:
    campaign: str
    field: str
    stored: int
    computed: int
    # False: not a counter --fix can recompute (the ledger itself breaks a rule).
    repairable: bool = True

    def __str__(self) -> str:
        if not self.repairable:
            return f"{self.campaign}: {self.field}: {self.stored}, at most {self.computed} allowed (not repairable)"
        return f"{self.campaign}: {self.field} stored {self.stored}, ledger says {self.computed}"


def totals_compute(*, campaign_id: int) -> dict[str, int]:
    """What the counters must be, by the rules in services/ledger.py."""
    entries = LedgerEntry.objects.filter(campaign_id=campaign_id)
    # A sponsor's match is in the total, not in a donation's balance nor in the counts.
    match = entries.filter(kind=LedgerEntry.Kind.MATCH)
    given = entries.exclude(kind=LedgerEntry.Kind.MATCH)
    counted = given.values("donation_id").annotate(net=Sum("delta_minor")).filter(net__gt=0)
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
        "matched_minor": match.aggregate(s=Sum("delta_minor"))["s"] or 0,
    }


_MATCH = Q(ledger__kind=LedgerEntry.Kind.MATCH)


def _balance_drifts(*, campaign_id: int) -> dict[int, tuple[int, int, int, int]]:
    """Donations whose stored balance or match is not the sum of their ledger entries (the donor's,
    the sponsor's): {pk: (stored balance, ledger's, stored match, ledger's)}. One grouped query,
    compared in the database (a campaign may hold a million donations)."""
    rows = (
        Donation.objects.filter(campaign_id=campaign_id)
        .annotate(net=Coalesce(Sum("ledger__delta_minor", filter=~_MATCH), 0),
                  matched=Coalesce(Sum("ledger__delta_minor", filter=_MATCH), 0))
        .exclude(balance_minor=F("net"), matched_minor=F("matched"))
        .values_list("pk", "balance_minor", "net", "matched_minor", "matched")
    )
    return {pk: (balance, net, stored_match, matched) for pk, balance, net, stored_match, matched in rows}


def matched_twice(*, campaign_id: int) -> dict[int, int]:
    """Gifts with more than one match entry adding money: {donation pk: how many}. The database
    constraint `ledger_match_once` forbids them; finding one means the ledger was tampered with."""
    rows = (
        LedgerEntry.objects.filter(campaign_id=campaign_id, kind=LedgerEntry.Kind.MATCH, delta_minor__gt=0)
        .values("donation_id").annotate(n=Count("pk")).filter(n__gt=1).values_list("donation_id", "n")
    )
    return dict(rows)


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
        for pk, (stored, computed_balance, stored_match, computed_match) in sorted(balances.items()):
            if stored != computed_balance:
                drifts.append(Drift(campaign.slug, f"balance_minor of donation {pk}", stored, computed_balance))
            if stored_match != computed_match:
                drifts.append(Drift(campaign.slug, f"matched_minor of donation {pk}", stored_match, computed_match))
        twice = matched_twice(campaign_id=campaign.pk)
        drifts += [
            Drift(campaign.slug, f"match entries of donation {pk}", count, 1, repairable=False)
            for pk, count in sorted(twice.items())
        ]
        if drifts and fix:
            for pk, (_, computed_balance, _, computed_match) in balances.items():
                Donation.objects.filter(pk=pk).update(balance_minor=computed_balance, matched_minor=computed_match)
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
        left = [drift for drift in drifts if not drift.repairable] if fix else drifts
        heartbeat.heartbeat_record(
            key=heartbeat.RECONCILE,
            data={"drifts": len(left), "campaigns": sorted({drift.campaign for drift in left})},
        )
    return drifts
