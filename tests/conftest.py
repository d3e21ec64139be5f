from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.providers.generic import SIGNATURE_HEADER, sign
from campaigns.services.campaigns import campaign_upsert

WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture(autouse=True)
def _clean_cache():
    # Our own key prefix only: never flush the shared server.
    yield
    cache.clear() if cache.__class__.__name__ == "LocMemCache" else _delete_own_keys()


def _delete_own_keys() -> None:
    from django.conf import settings

    try:
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(f"{settings.CACHE_KEY_PREFIX}:*"):
            client.delete(key)
    except Exception:
        pass


@pytest.fixture
def campaign(db) -> Campaign:
    now = timezone.now()
    campaign, _ = campaign_upsert(
        slug="test-campaign",
        defaults={
            "title": "Campagne de test",
            "goal_minor": 1_000_000,
            "currency": "EUR",
            "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=29),
            "status": Campaign.Status.ACTIVE,
        },
    )
    return campaign


def webhook_body(
    *,
    event_id: str,
    type: str = "donation.succeeded",
    donation_id: str = "don_1",
    campaign: str = "test-campaign",
    amount_minor=2500,
    currency: str = "EUR",
    **data,
) -> bytes:
    payload = {
        "id": event_id,
        "type": type,
        "data": {
            "donation_id": donation_id,
            "campaign": campaign,
            "amount_minor": amount_minor,
            "currency": currency,
            "donor": {"name": "Marie", "email": "m@example.org", "anonymous": False},
            "occurred_at": "2023-05-12T10:00:00Z",
            **data,
        },
    }
    return json.dumps(payload).encode()


def post_webhook(client: Client, body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None,
                 signature: str | None = None):
    header = signature if signature is not None else sign(body, secret, timestamp or int(time.time()))
    extra = {SIGNATURE_HEADER: header} if header else {}
    return client.post("/hooks/generic/", body, content_type="application/json", headers=extra)
