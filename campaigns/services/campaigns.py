"""Campaign writes: anything that changes what banners show republishes the snapshot."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns import progress_cache
from campaigns.models import Campaign, CampaignTotal
from campaigns.services.progress import progress_publish


def campaign_changed(*, campaign_id: int) -> None:
    """Call in the transaction that saved a campaign (admin, seed): banners follow on commit.

    The counter's version is bumped too (under its row lock, after the campaign's): a snapshot's
    version then orders every change it shows, money or text, which the cache relies on."""
    CampaignTotal.objects.filter(campaign_id=campaign_id).update(version=F("version") + 1, updated_at=timezone.now())

    def publish() -> None:
        progress_cache.current_slug_forget()
        progress_publish(campaign_id=campaign_id)

    transaction.on_commit(publish)


def campaign_upsert(*, slug: str, defaults: dict[str, Any]) -> tuple[Campaign, bool]:
    """Create or update a campaign by slug, with its counter row."""
    with transaction.atomic():
        campaign, created = Campaign.objects.update_or_create(slug=slug, defaults=defaults)
        CampaignTotal.objects.get_or_create(campaign=campaign)
        campaign_changed(campaign_id=campaign.pk)
    return campaign, created
