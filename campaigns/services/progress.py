"""Publishing progress after a commit: refresh the shared snapshot, notify live listeners."""

from __future__ import annotations

import functools
import json
import logging

from django.conf import settings

from campaigns import selectors

logger = logging.getLogger(__name__)

PROGRESS_CHANNEL = "jauge:progress"


@functools.cache
def _redis_client(url: str):
    """One pooled client per process: a new connection per publish cost more than the publish
    (redis-py's pool notices a fork and reconnects in Celery's child processes)."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def progress_publish(*, campaign_id: int) -> None:
    """Never raises: the money is committed; a cache or Redis outage only delays the banner."""
    try:
        snapshot = selectors.progress_refresh(campaign_id=campaign_id)
    except Exception:
        logger.exception("could not refresh the progress snapshot of campaign %s", campaign_id)
        return
    if snapshot is None or not settings.REDIS_URL:
        return
    try:
        _redis_client(settings.REDIS_URL).publish(f"{PROGRESS_CHANNEL}:{snapshot['slug']}", json.dumps(snapshot))
    except Exception:
        logger.warning("could not publish progress of %s", snapshot["slug"], exc_info=True)
