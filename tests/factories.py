"""Helpers the tests share: money moves by donation id, webhook bodies, signed posts.

Imported by the tests that use them (never through conftest.py, which only holds fixtures).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.test import Client
from django.utils import timezone

from campaigns.models import CampaignTotal, Donation, LedgerEntry, PaymentEvent
from campaigns.services import intake, ledger
from campaigns.signing import SIGNATURE_HEADER, sign

# The generic webhook's secret in the test settings (tests/services.py sets GENERIC_WEBHOOK_SECRET).
WEBHOOK_SECRET = "test-webhook-secret-4f1d7c2a9b8e6d5c3a1f0e9d"
# Screenshots and traces the browser tests leave for a human to look at.
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def confirm(donation_id: int, **options) -> Donation:
    with ledger.donation_locked(donation_id=donation_id) as (total, donation):
        return ledger.donation_confirm(total=total, donation=donation, **options)


def refund(donation_id: int, **options) -> int:
    with ledger.donation_locked(donation_id=donation_id) as (total, donation):
        return ledger.donation_refund(total=total, donation=donation, **options)


def correct(donation_id: int, **options) -> LedgerEntry:
    with ledger.donation_locked(donation_id=donation_id) as (total, donation):
        return ledger.donation_correct(total=total, donation=donation, **options)


def fail(donation_id: int, **options) -> Donation:
    with ledger.donation_locked(donation_id=donation_id) as (total, donation):
        return ledger.donation_fail(total=total, donation=donation, **options)


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


def counter(campaign) -> CampaignTotal:
    return CampaignTotal.objects.get(campaign=campaign)


def record(campaign, external_id: str, amount_minor: int, email: str) -> Donation:
    """An offline gift of `email`, confirmed now."""
    donation, _ = ledger.donation_record(
        campaign=campaign, source=Donation.Source.MANUAL, external_id=external_id,
        amount_minor=amount_minor, at=timezone.now(), donor_email=email,
    )
    return donation


def process_all() -> None:
    """Apply every stored event still `received`, oldest first (what the worker does)."""
    for event_id in PaymentEvent.objects.filter(status="received").order_by("pk").values_list("pk", flat=True):
        intake.payment_event_process(event_id=event_id)
