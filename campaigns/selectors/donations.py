"""Reads for the reader pages (donation page, thank-you page): off the banner's hot path.

They aggregate a campaign's donations, so each result is cached under the campaign's
counter version: a new gift changes the version and the next read recomputes once.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Sum

from campaigns.models import Campaign, Donation, LedgerEntry

logger = logging.getLogger(__name__)

DONOR_WALL_SIZE = 30


def _cached(key: str, compute):
    try:
        value = cache.get(key)
    except Exception:
        value = None
    if value is None:
        value = compute()
        try:
            cache.set(key, value, 3600)
        except Exception:
            logger.warning("cache unavailable", exc_info=True)
    return value


def campaign_monthly_summary(*, campaign: Campaign, version: int) -> dict[str, int]:
    """How much of the total comes from monthly donors (net of refunds), and how many they are."""

    def compute() -> dict[str, int]:
        net = LedgerEntry.objects.filter(
            campaign=campaign, donation__frequency=Donation.Frequency.MONTHLY
        ).aggregate(net=Sum("delta_minor"))["net"]
        donors = (
            Donation.objects.filter(
                campaign=campaign, frequency=Donation.Frequency.MONTHLY, status=Donation.Status.CONFIRMED
            ).aggregate(n=Count("donor_key", distinct=True))["n"]
        )
        return {"total_minor": net or 0, "donors": donors or 0}

    return _cached(f"donate:monthly:{campaign.pk}:{version}", compute)


def _first_name(name: str) -> str:
    return name.strip().split()[0] if name.strip() else ""


def campaign_donor_wall(*, campaign: Campaign, version: int) -> list[dict[str, Any]]:
    """The latest confirmed gifts as the donors agreed to show them (empty when the wall is off)."""
    if not campaign.donor_wall:
        return []

    def compute() -> list[dict[str, Any]]:
        rows = (
            Donation.objects.filter(campaign=campaign, status=Donation.Status.CONFIRMED)
            .order_by("-confirmed_at", "-pk")
            .values("donor_name", "anonymous", "message", "public_amount", "amount_minor", "currency",
                    "frequency")[:DONOR_WALL_SIZE]
        )
        return [
            {
                # None: the template shows "Anonyme" in the page's language.
                "first_name": None if row["anonymous"] else (_first_name(row["donor_name"]) or None),
                "message": row["message"],
                "amount_minor": row["amount_minor"] if row["public_amount"] else None,
                "currency": row["currency"],
                "monthly": row["frequency"] == Donation.Frequency.MONTHLY,
            }
            for row in rows
        ]

    return _cached(f"donate:wall:{campaign.pk}:{version}", compute)
