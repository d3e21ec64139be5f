"""Webhook sources: what a provider's webhooks give Jauge, as normalized events.

A source verifies a request and parses its body — pure functions of the bytes and headers, no
database: nothing is looked up before the raw event is stored. The intake service only ever sees
`NormalizedEvent`s, so Stripe and the generic webhook (which the sandbox posts to) share one path.
Checkouts (what a reader pays with) are the other registry: providers/checkout.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from campaigns.signing import SignatureError as SignatureError  # re-exported for providers


class PayloadError(Exception):
    """Signed but unusable body: answer 400 naming the field, store nothing."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class EventError(Exception):
    """A stored event that cannot be applied (unknown campaign, mismatch): kept, shown, retryable."""


SUCCEEDED = "succeeded"
REFUNDED = "refunded"
FAILED = "failed"
# Money a dispute took back comes back (a won dispute): refunded_minor goes down again.
REINSTATED = "reinstated"
IGNORED = "ignored"
# A monthly gift changed at the provider (cancelled after failed payments, paused from its
# dashboard): no money moves; the gift's state is re-read from the provider (extra["subscription"]).
SUBSCRIPTION_CHANGED = "subscription_changed"


@dataclass(frozen=True)
class NormalizedEvent:
    event_id: str
    kind: str  # SUCCEEDED | REFUNDED | FAILED | REINSTATED | SUBSCRIPTION_CHANGED | IGNORED
    donation_external_id: str = ""
    campaign_slug: str = ""
    amount_minor: int = 0
    currency: str = ""
    donor_name: str = ""
    donor_email: str = ""
    anonymous: bool = False
    occurred_at: datetime | None = None
    # Optional: a pledge reference that ties the event to a pending Donation.
    reference: str = ""
    # An empty campaign_slug means: the campaign of the donation this event names (a refund or
    # dispute that only names the payment); the intake finds it once the event is stored.
    extra: dict = field(default_factory=dict)


class WebhookSource:
    """One `/hooks/<identifier>/` endpoint."""

    identifier: ClassVar[str]
    # The Donation.source that (source, external_id) idempotency keys use.
    source: ClassVar[str]
    # Header names worth keeping next to the raw body (for editors and audits).
    kept_headers: ClassVar[tuple[str, ...]] = ()

    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise SignatureError unless the raw body and its headers are authentic."""
        raise NotImplementedError

    def parse(self, body: bytes) -> NormalizedEvent:
        """Validate a verified body; raise PayloadError naming the bad field."""
        raise NotImplementedError
