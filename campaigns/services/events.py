"""Stored payment events as the services read them: parsed by their webhook source, with the
campaign of an event that names only its payment, and the donation they are about."""

from __future__ import annotations

from dataclasses import replace

from campaigns.models import Campaign, Donation, PaymentEvent
from campaigns.providers import WEBHOOK_SOURCES
from campaigns.providers.base import IGNORED, EventError, NormalizedEvent, PayloadError


def event_parse(event: PaymentEvent) -> NormalizedEvent:
    """The stored body, parsed again (sources are pure); EventError when it is unusable."""
    source = WEBHOOK_SOURCES.get(event.provider)
    if source is None:
        raise EventError(f"unknown provider {event.provider!r}")
    try:
        parsed = source.parse(event.body.encode())
    except PayloadError as exc:
        raise EventError(f"unusable payload: {exc}") from None
    if parsed.campaign_slug or parsed.kind == IGNORED:
        return parsed
    # A refund or a dispute that names only the payment (Stripe: the PaymentIntent): the event
    # that confirmed the pledge recorded it as its donation's external id.
    confirmed_by = (
        PaymentEvent.objects.filter(provider=event.provider, donation_external_id=parsed.donation_external_id,
                                    donation__isnull=False)
        .select_related("donation__campaign")
        .first()
        if parsed.donation_external_id
        else None
    )
    if confirmed_by is None:
        # Not a payment Jauge knows (yet): kept as a failed event an editor can look at and retry.
        return replace(parsed, campaign_slug="?")
    donation = confirmed_by.donation
    return replace(parsed, campaign_slug=donation.campaign.slug, reference=donation.reference or "")


def donation_find(*, source: str, parsed: NormalizedEvent, lock: bool = False) -> Donation | None:
    """The donation an event is about: by (source, external id), else by the pledge reference.
    `lock`: the caller holds the campaign's counter (the lock order: total, then donation)."""
    donations = Donation.objects.select_for_update() if lock else Donation.objects
    donation = donations.filter(source=source, external_id=parsed.donation_external_id).first()
    if donation is None and parsed.reference:
        donation = donations.filter(reference=parsed.reference).first()
    return donation


def same_campaign_check(donation: Donation, campaign: Campaign) -> None:
    # Applying it would move money of a campaign whose counter this transaction does not hold.
    if donation.campaign_id != campaign.pk:
        raise EventError(f"donation {donation} belongs to another campaign than {campaign.slug!r}")
