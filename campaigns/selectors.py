"""Reads. The hot ones (progress, banner) are O(1): one cached snapshot per campaign, rebuilt
from the CampaignTotal counter (one indexed query), never from the donations."""

from __future__ import annotations

import logging
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
    return f"progress:v2:{slug}"


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
        "slug": campaign.slug,
        "title": campaign.title,
        "currency": campaign.currency,
        "goal_minor": campaign.goal_minor,
        "total_minor": total_minor,
        "pending_minor": total.pending_minor if total else 0,
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


def progress_refresh(*, campaign_id: int | None = None, slug: str | None = None) -> dict[str, Any] | None:
    """Rebuild one campaign's snapshot from the counter row and store it in the cache."""
    lookup = {"pk": campaign_id} if campaign_id is not None else {"slug": slug}
    campaign = Campaign.objects.filter(**lookup).select_related("totals").first()
    if campaign is None:
        return None
    return _snapshot_store(campaign)


def _snapshot_store(campaign: Campaign) -> dict[str, Any]:
    """Snapshot a campaign fetched with its counter (select_related) and cache it."""
    try:
        total = campaign.totals
    except CampaignTotal.DoesNotExist:
        total = None
    snapshot = _snapshot(campaign, total)
    try:
        cache.set(_progress_key(campaign.slug), snapshot, settings.PROGRESS_CACHE_SECONDS)
    except Exception:
        logger.warning("progress cache unavailable", exc_info=True)
    _local_put(campaign.slug, snapshot)
    return snapshot


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
        _snapshot_store(campaign)
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
