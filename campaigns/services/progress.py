"""Publishing progress after a commit: store the fresh snapshot, notify live listeners."""

from __future__ import annotations

import logging

from campaigns import selectors
from campaigns.models import CampaignTotal

logger = logging.getLogger(__name__)

PROGRESS_CHANNEL = "jauge:progress"


def progress_publish(*, campaign_id: int, total: CampaignTotal | None = None) -> None:
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
        selectors.progress_store(snapshot, channel=f"{PROGRESS_CHANNEL}:{snapshot['slug']}")
