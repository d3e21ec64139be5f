"""Publishing progress after a commit: store the fresh snapshot, notify live listeners."""

from __future__ import annotations

import itertools
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns import progress_cache
from campaigns.models import CampaignTotal
from campaigns.selectors.progress import MilestoneRows, progress_build, progress_snapshot_of
from campaigns.services.milestones import milestones_reach

logger = logging.getLogger(__name__)


def progress_publish(
    *, campaign_id: int, total: CampaignTotal | None = None, milestones: MilestoneRows | None = None,
    force: bool = False,
) -> None:
    """After commit. Never raises: the money is committed; an outage only delays the banner.

    `total`: the counter row the transaction locked and saved last, with its campaign read
    through it and `milestones` read after it (under the lock, so current): the snapshot is built
    from memory without a query. Without them, the snapshot is read back from the database.
    """
    try:
        if total is not None and milestones is not None and CampaignTotal.campaign.is_cached(total):
            snapshot = progress_snapshot_of(total, milestones)
        else:
            snapshot = progress_build(campaign_id=campaign_id)
    except Exception:
        logger.exception("could not build the progress snapshot of campaign %s", campaign_id)
        return
    if snapshot is not None:
        channel = f"{progress_cache.PROGRESS_CHANNEL}:{snapshot['slug']}"
        progress_cache.snapshot_store(snapshot, channel=channel, force=force)


# A transaction may change a campaign's counter several times (a confirmation and the refund that
# waited for it; a seeded or imported batch): its progress is published once, after the commit,
# with the final figures. Each change registers a callback; the first of them to run publishes.
# It knows which registration came last in the transaction (`_latest`): if that is its own, its
# counter object saw every change and is published from memory (the hot path: no query);
# otherwise (a batch, or a later change rolled back with its savepoint) it reads the row back.
_sequence = itertools.count(1)


def progress_publish_on_commit(*, total: CampaignTotal) -> None:
    """Call in the transaction that saved `total`: the milestones its total reaches are recorded
    (in this transaction), and its campaign's progress follows on commit."""
    milestones = milestones_reach(total=total)
    connection = transaction.get_connection()
    latest = connection.__dict__.setdefault("_jauge_progress_latest", {})
    ran = connection.__dict__.setdefault("_jauge_progress_ran", {})
    campaign_id = total.campaign_id
    registered = latest[campaign_id] = next(_sequence)

    def publish() -> None:
        if ran.get(campaign_id, 0) > registered:
            return  # another callback of this commit published already
        ran[campaign_id] = next(_sequence)
        last = latest.get(campaign_id) == registered
        progress_publish(campaign_id=campaign_id, total=total if last else None, milestones=milestones)

    transaction.on_commit(publish)


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
    cached = progress_cache.cached_versions([(campaign_id, slug) for campaign_id, slug, _ in recent])
    refreshed = []
    for (campaign_id, slug, version), cached_version in zip(recent, cached, strict=True):
        if cached_version is not None and cached_version != version:
            progress_publish(campaign_id=campaign_id, force=cached_version > version)
            refreshed.append(slug)
    if refreshed:
        logger.warning("progress snapshots not at their counter's version, republished: %s", ", ".join(refreshed))
    return refreshed
