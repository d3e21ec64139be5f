"""*Mes dons*: one donor's gifts across every campaign, read by their donor_key."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef

from campaigns.models import Donation, Subscription, TaxReceipt, TaxReceiptLine

# A donor with more gifts than this sees the latest ones (a page, not an export).
MAX_GIFTS = 500


@dataclass
class MonthlyGift:
    subscription: Subscription
    instalments: list[Donation] = field(default_factory=list)


@dataclass
class DonorGifts:
    gifts: list[Donation]  # one-off gifts and pledges not (yet) tied to a subscription
    monthly: list[MonthlyGift]
    # The donor's French tax receipts in force (a cancelled one is replaced, or no longer owed).
    tax_receipts: list[TaxReceipt] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.gifts and not self.monthly


def donor_gifts(*, donor_key: str) -> DonorGifts:
    donations = list(
        Donation.objects.filter(donor_key=donor_key).select_related("campaign", "subscription__campaign")
        .order_by("-created_at", "-pk")[:MAX_GIFTS]
    )
    monthly: dict[int, MonthlyGift] = {}
    gifts = []
    for donation in donations:
        if donation.subscription_id is None:
            gifts.append(donation)
        else:
            gift = monthly.setdefault(donation.subscription_id, MonthlyGift(donation.subscription))
            gift.instalments.append(donation)
    # A receipt keeps the donor_key it was issued under (it is immutable), but a GDPR erasure moves
    # the donations to a new key: only a receipt whose money is still this donor's is theirs to see.
    still_theirs = TaxReceiptLine.objects.filter(receipt=OuterRef("pk"), donation__donor_key=donor_key)
    receipts = list(
        TaxReceipt.objects.filter(donor_key=donor_key, cancelled_at__isnull=True).filter(Exists(still_theirs))
        .order_by("-year", "-sequence")[:MAX_GIFTS]
    )
    return DonorGifts(gifts=gifts, monthly=list(monthly.values()), tax_receipts=receipts)


def donor_monthly_gift(*, donor_key: str, subscription_id: int) -> MonthlyGift | None:
    """One monthly gift of this donor, with its instalments (what its fragment redraws)."""
    instalments = list(
        Donation.objects.filter(donor_key=donor_key, subscription_id=subscription_id)
        .select_related("campaign", "subscription__campaign").order_by("-created_at", "-pk")[:MAX_GIFTS]
    )
    return MonthlyGift(instalments[0].subscription, instalments) if instalments else None
