"""Publishing progress after a commit: store the fresh snapshot, notify live listeners."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from campaigns import selectors
from campaigns.models import CampaignTotal

logger = logging.getLogger(__name__)

PROGRESS_CHANNEL = "jauge:progress"


def progress_publish(*, campaign_id: int, total: CampaignTotal | None = None, force: bool = False) -> None:
    """After commit. Never raises: the money is committed; an outage only delays the banner.

    `total`: the counter row the transaction locked and saved. If its campaign was read through
    it (under the lock, so current), the snapshot is built from memory without a query;
    otherwise it is read back from the database.
    """
    try:
        if total is not None and CampaignTotal.campaign.is_cached(total):
            snapshot = selectors.progress_snapshot_of(total)
        else:
            snapshot = selectors.progress_build(campaign_id=campaign_id)
    except Exception:
        logger.exception("could not build the progress snapshot of campaign %s", campaign_id)
        return
    if snapshot is not None:
        selectors.progress_store(snapshot, channel=f"{PROGRESS_CHANNEL}:{snapshot['slug']}", force=force)


def progress_lagging_refresh(*, changed_within: timedelta = timedelta(hours=2)) -> list[str]:
    """Republish snapshots whose cached version is not their counter's: older (a worker killed
    between its commit and its publish would otherwise leave a banner behind until the next
    change) or newer (the database was restored from a backup: the compare-and-set would refuse
    the real figures until the cache expired). Beat runs it every 30 s; returns the slugs."""
    if not settings.REDIS_URL:
        return []  # per-process caches expire within PROGRESS_CACHE_SECONDS (2 s) anyway
    recent = list(
        CampaignTotal.objects.filter(updated_at__gte=timezone.now() - changed_within).values_list(
            "campaign_id", "campaign__slug", "version"
        )
    )
    if not recent:
        return []
    cached = selectors.progress_cached_versions([(campaign_id, slug) for campaign_id, slug, _ in recent])
    refreshed = []
    for (campaign_id, slug, version), cached_version in zip(recent, cached, strict=True):
        if cached_version is not None and cached_version != version:
            progress_publish(campaign_id=campaign_id, force=cached_version > version)
            refreshed.append(slug)
    if refreshed:
        logger.warning("progress snapshots not at their counter's version, republished: %s", ", ".join(refreshed))
    return refreshed
