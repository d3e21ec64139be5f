"""The progress cache: one snapshot per campaign in Redis (Django's cache elsewhere), a per-process
copy in front of it, and the compare-and-set that keeps the newest version whatever order the
writers' commits arrive in. It stores dicts and knows nothing of models: selectors build the
snapshots, services publish them after a commit.
"""

from __future__ import annotations

import functools
import json
import logging
import pickle
import time
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

# Live listeners (the editors' dashboard) subscribe to `<channel>:<slug>`.
PROGRESS_CHANNEL = "jauge:progress"
CURRENT_KEY = "campaign:current-slug"
CURRENT_SECONDS = 10
_LOCAL_MAX = 1000


def progress_key(slug: str) -> str:
    return f"progress:v5:{slug}"


def _version_key(key: str, campaign_id: int) -> str:
    # Per campaign row, not per slug: a campaign deleted and created again under the same slug
    # starts its versions from zero and must not be held back by the old one's.
    return f"{key}:version:{campaign_id}"


# A per-process copy of each snapshot for PROGRESS_LOCAL_SECONDS (default 1 s): at page-view
# scale even one Redis round trip costs more than the rest of a banner request. A refresh made in
# this process replaces it at once; one made elsewhere (a worker) shows here within that delay.
_local: dict[str, tuple[float, Any]] = {}


def local_get(key: str) -> Any:
    entry = _local.get(key)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    return None


def local_put(key: str, value: Any) -> None:
    seconds = settings.PROGRESS_LOCAL_SECONDS
    if seconds <= 0:
        return
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[key] = (time.monotonic() + seconds, value)


def progress_local_forget() -> None:
    """Drop this process's copies (tests, or after editing data behind the services' back)."""
    _local.clear()


def snapshot_get(slug: str) -> dict[str, Any] | None:
    """The cached snapshot of `slug` (this process's copy first), or None. Never raises."""
    snapshot = local_get(slug)
    if snapshot is not None:
        return snapshot
    try:
        snapshot = cache.get(progress_key(slug))
    except Exception:
        snapshot = None
    if snapshot is not None:
        local_put(slug, snapshot)
    return snapshot


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
def redis_client(url: str) -> redis.Redis:
    """One pooled client per process (redis-py's pool notices a fork and reconnects in Celery's
    child processes): a new connection per write cost more than the write."""
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


@functools.cache
def _store_script(url: str):
    return redis_client(url).register_script(_STORE_IF_NOT_OLDER)


def cached_versions(campaigns: list[tuple[int, str]]) -> list[int | None]:
    """The versions of these (campaign id, slug)s' cached snapshots (None: not cached), in one
    round trip. Redis only."""
    keys = [_version_key(cache.make_and_validate_key(progress_key(slug)), pk) for pk, slug in campaigns]
    return [None if value is None else int(value) for value in redis_client(settings.REDIS_URL).mget(keys)]


def snapshot_store(snapshot: dict[str, Any], *, channel: str = "", force: bool = False) -> bool:
    """Cache a snapshot unless a newer version is cached (`force`: even then); publish it on
    `channel` if stored. Never raises: a cache outage only delays the banner. True when stored."""
    slug = snapshot["slug"]
    try:
        if settings.REDIS_URL:
            # One round trip for compare, store and publish. The value is written the way
            # Django's Redis cache writes it (a pickle under its key), so cache.get reads it.
            key = cache.make_and_validate_key(progress_key(slug))
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
            cache.set(progress_key(slug), snapshot, settings.PROGRESS_CACHE_SECONDS)
            stored = True
    except Exception:
        logger.warning("progress cache unavailable", exc_info=True)
        local_put(slug, snapshot)  # this process at least shows it
        return False
    if stored:
        local_put(slug, snapshot)
    return bool(stored)


def current_slug_get() -> str | None:
    """The cached slug of the live campaign ("" when there is none), or None when not cached."""
    slug = local_get(CURRENT_KEY)
    if slug is not None:
        return slug
    try:
        slug = cache.get(CURRENT_KEY)
    except Exception:
        slug = None
    if slug is not None:
        local_put(CURRENT_KEY, slug)
    return slug


def current_slug_put(slug: str) -> None:
    try:
        cache.set(CURRENT_KEY, slug, CURRENT_SECONDS)
    except Exception:
        logger.warning("cache unavailable", exc_info=True)
    local_put(CURRENT_KEY, slug)


def current_slug_forget() -> None:
    """Call when a campaign's status, dates or featured flag change."""
    _local.pop(CURRENT_KEY, None)
    try:
        cache.delete(CURRENT_KEY)
    except Exception:
        logger.warning("cache unavailable", exc_info=True)
