"""Reads. The hot ones (progress, banner) are O(1): one cached snapshot per campaign, rebuilt
from the CampaignTotal counter (one indexed query), never from the donations."""

from __future__ import annotations

import functools
import json
import logging
import pickle
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from campaigns import money
from campaigns.models import Campaign, CampaignTotal

logger = logging.getLogger(__name__)

CURRENT_SLUG = "current"
_CURRENT_CACHE_KEY = "campaign:current-slug"
_CURRENT_CACHE_SECONDS = 10


def _progress_key(slug: str) -> str:
    return f"progress:v3:{slug}"


def _version_key(key: str, campaign_id: int) -> str:
    # Per campaign row, not per slug: a campaign deleted and created again under the same slug
    # starts its versions from zero and must not be held back by the old one's.
    return f"{key}:version:{campaign_id}"


# A per-process copy of each snapshot for PROGRESS_LOCAL_SECONDS (default 1 s): at page-view
# scale even one Redis round trip costs more than the rest of a banner request. A refresh made in
# this process replaces it at once; one made elsewhere (a worker) shows here within that delay.
_local: dict[str, tuple[float, Any]] = {}
_LOCAL_MAX = 1000


def _local_get(key: str) -> Any:
    entry = _local.get(key)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    return None


def _local_put(key: str, value: Any) -> None:
    seconds = settings.PROGRESS_LOCAL_SECONDS
    if seconds <= 0:
        return
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[key] = (time.monotonic() + seconds, value)


def progress_local_forget() -> None:
    """Drop this process's copies (tests, or after editing data behind the services' back)."""
    _local.clear()


def _snapshot(campaign: Campaign, total: CampaignTotal | None) -> dict[str, Any]:
    total_minor = total.total_minor if total else 0
    version = total.version if total else 0
    updated = total.updated_at if total else campaign.updated_at
    return {
        "campaign_id": campaign.pk,
        "slug": campaign.slug,
        "title": campaign.title,
        "currency": campaign.currency,
        "goal_minor": campaign.goal_minor,
        "total_minor": total_minor,
        # Donor-confirmed promises only (the counter), and never more than the campaign's cap.
        "pending_minor": min(total.pending_minor, campaign.pending_cap_minor) if total else 0,
        "percent": money.percent(total_minor, campaign.goal_minor),
        "donors": total.donor_count if total else 0,
        "donations": total.donation_count if total else 0,
        "status": campaign.status,
        "starts_at": timezone.localtime(campaign.starts_at).isoformat(),
        "ends_at": timezone.localtime(campaign.ends_at).isoformat(),
        "version": version,
        "updated_at": timezone.localtime(max(updated, campaign.updated_at)).isoformat(),
        # Not in the JSON contract's example, used by the banner and conditional GETs:
        "locale": campaign.locale,
        # What the embeds draw besides the numbers (banner text, theme, polling, framing).
        "appeal": campaign.appeal,
        "poll_interval_seconds": campaign.poll_interval_seconds,
        "color_primary": campaign.color_primary,
        "color_background": campaign.color_background,
        "color_text": campaign.color_text,
        "font_family": campaign.font_family,
        "origins": campaign.origins,
        "etag": f'"{campaign.pk}-{version}-{int(campaign.updated_at.timestamp() * 1000)}"',
    }


def progress_build(*, campaign_id: int | None = None, slug: str | None = None) -> dict[str, Any] | None:
    """One campaign's snapshot as the database has it now (one query), not stored."""
    lookup = {"pk": campaign_id} if campaign_id is not None else {"slug": slug}
    campaign = Campaign.objects.filter(**lookup).select_related("totals").first()
    return None if campaign is None else _snapshot_of(campaign)


def progress_refresh(*, campaign_id: int | None = None, slug: str | None = None) -> dict[str, Any] | None:
    """Rebuild one campaign's snapshot from the counter row and store it in the cache."""
    snapshot = progress_build(campaign_id=campaign_id, slug=slug)
    if snapshot is not None:
        progress_store(snapshot)
    return snapshot


def _snapshot_of(campaign: Campaign) -> dict[str, Any]:
    """Snapshot a campaign fetched with its counter (select_related)."""
    try:
        total = campaign.totals
    except CampaignTotal.DoesNotExist:
        total = None
    return _snapshot(campaign, total)


def progress_snapshot_of(total: CampaignTotal) -> dict[str, Any]:
    """The snapshot of a counter row and its campaign as they are in memory (just committed)."""
    return _snapshot(total.campaign, total)


# Writers race after their commits (two workers, or a worker and a reader rebuilding a missed
# snapshot): the cache keeps the highest version whatever order the writes arrive in. Every
# change of what a snapshot shows bumps the counter's version (ledger entries and campaign
# edits alike), so one version is one content and an equal version may be written again.
_STORE_IF_NOT_OLDER = """
local current = tonumber(redis.call('GET', KEYS[2]) or '-1')
if ARGV[6] ~= '1' and tonumber(ARGV[2]) < current then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return 1
"""


@functools.cache
def redis_client(url: str):
    """One pooled client per process (redis-py's pool notices a fork and reconnects in Celery's
    child processes): a new connection per write cost more than the write."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


@functools.cache
def _store_script(url: str):
    return redis_client(url).register_script(_STORE_IF_NOT_OLDER)


def progress_cached_versions(campaigns: list[tuple[int, str]]) -> list[int | None]:
    """The versions of these (campaign id, slug)s' cached snapshots (None: not cached), in one
    round trip."""
    keys = [_version_key(cache.make_and_validate_key(_progress_key(slug)), pk) for pk, slug in campaigns]
    return [None if value is None else int(value) for value in redis_client(settings.REDIS_URL).mget(keys)]


def progress_store(snapshot: dict[str, Any], *, channel: str = "", force: bool = False) -> bool:
    """Cache a snapshot unless a newer version is cached (`force`: even then); publish it on
    `channel` if stored. Never raises: a cache outage only delays the banner. True when stored."""
    slug = snapshot["slug"]
    try:
        if settings.REDIS_URL:
            # One round trip for compare, store and publish. The value is written the way
            # Django's Redis cache writes it (a pickle under its key), so cache.get reads it.
            key = cache.make_and_validate_key(_progress_key(slug))
            stored = _store_script(settings.REDIS_URL)(
                keys=[key, _version_key(key, snapshot["campaign_id"])],
                args=[
                    pickle.dumps(snapshot, pickle.HIGHEST_PROTOCOL),
                    snapshot["version"],
                    settings.PROGRESS_CACHE_SECONDS,
                    channel,
                    json.dumps(snapshot) if channel else "",
                    "1" if force else "0",
                ],
            )
        else:
            cache.set(_progress_key(slug), snapshot, settings.PROGRESS_CACHE_SECONDS)
            stored = True
    except Exception:
        logger.warning("progress cache unavailable", exc_info=True)
        _local_put(slug, snapshot)  # this process at least shows it
        return False
    if stored:
        _local_put(slug, snapshot)
    return bool(stored)


def campaign_current_slug() -> str | None:
    """The publication's live campaign: the featured active one, else the one ending soonest."""
    slug = _local_get(_CURRENT_CACHE_KEY)
    if slug is not None:
        return slug or None
    try:
        slug = cache.get(_CURRENT_CACHE_KEY)
    except Exception:
        slug = None
    if slug is not None:
        _local_put(_CURRENT_CACHE_KEY, slug)
        return slug or None
    now = timezone.now()
    campaign = (
        Campaign.objects.filter(status=Campaign.Status.ACTIVE, starts_at__lte=now)
        .filter(Q(ends_at__gt=now))
        .order_by("-featured", "ends_at")
        .select_related("totals")
        .first()
    )
    slug = campaign.slug if campaign else ""
    if campaign is not None:
        # The same query gave the whole campaign: cache its snapshot too, so a cold
        # /embed/current/ costs one query, not two.
        progress_store(_snapshot_of(campaign))
    try:
        cache.set(_CURRENT_CACHE_KEY, slug, _CURRENT_CACHE_SECONDS)
    except Exception:
        logger.warning("cache unavailable", exc_info=True)
    _local_put(_CURRENT_CACHE_KEY, slug)
    return slug or None


def campaign_current_forget() -> None:
    """Call when a campaign's status, dates or featured flag change."""
    _local.pop(_CURRENT_CACHE_KEY, None)
    try:
        cache.delete(_CURRENT_CACHE_KEY)
    except Exception:
        logger.warning("cache unavailable", exc_info=True)


def campaign_progress(*, slug: str) -> dict[str, Any] | None:
    """Progress of a campaign by slug (or `current`), from the cache when it can be."""
    if slug == CURRENT_SLUG:
        slug = campaign_current_slug()
        if slug is None:
            return None
    snapshot = _local_get(slug)
    if snapshot is not None:
        return snapshot
    try:
        snapshot = cache.get(_progress_key(slug))
    except Exception:
        snapshot = None
    if snapshot is not None:
        _local_put(slug, snapshot)
        return snapshot
    return progress_refresh(slug=slug)


PUBLIC_PROGRESS_FIELDS = (
    "slug", "title", "currency", "goal_minor", "total_minor", "pending_minor", "percent",
    "donors", "donations", "status", "starts_at", "ends_at", "version", "updated_at",
)


def progress_public(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The progress.json contract's fields, in the contract's order."""
    return {field: snapshot[field] for field in PUBLIC_PROGRESS_FIELDS}
