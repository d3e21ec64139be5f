"""Webhook intake: store the raw event first, apply it later in a worker, exactly once.

Applying is order-independent: a refund that arrives before its donation's success is
deferred and applied in the success's transaction, so any delivery order ends the same.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns import queue
from campaigns.models import Campaign, CampaignTotal, Donation, LedgerEntry, PaymentEvent
from campaigns.providers import WEBHOOK_SOURCES
from campaigns.providers.base import (
    FAILED,
    IGNORED,
    REFUNDED,
    REINSTATED,
    SUCCEEDED,
    EventError,
    NormalizedEvent,
    PayloadError,
)
from campaigns.services import ledger

logger = logging.getLogger(__name__)


def payment_event_receive(
    *, provider: str, event: NormalizedEvent, body: bytes, headers: dict[str, str]
) -> bool:
    """Commit the raw event (idempotent on provider + event id) and enqueue its processing.
    False when this event was stored already (a provider's re-delivery): nothing is done."""
    try:
        with transaction.atomic():
            stored = PaymentEvent.objects.create(
                provider=provider,
                event_id=event.event_id,
                event_type=event.kind,
                donation_external_id=event.donation_external_id,
                body=body.decode("utf-8"),
                headers=headers,
            )
    except IntegrityError:
        # A third of deliveries are re-deliveries: answer them without reading the stored body.
        if PaymentEvent.objects.filter(provider=provider, event_id=event.event_id).exists():
            return False
        raise
    queue.send("process_payment_event", stored.pk)
    return True


def _find_donation(provider_source: str, event: NormalizedEvent, *, lock: bool = False) -> Donation | None:
    donations = Donation.objects.select_for_update() if lock else Donation.objects
    donation = donations.filter(source=provider_source, external_id=event.donation_external_id).first()
    if donation is None and event.reference:
        donation = donations.filter(reference=event.reference).first()
    return donation


def _apply_succeeded(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    # The hot path: the campaign's counter is locked by the caller, so every query saved here
    # shortens the time other events of the same campaign wait.
    donation = _find_donation(source, parsed, lock=True)
    at = parsed.occurred_at or timezone.now()
    if donation is None:
        # A gift Jauge had not seen (no pledge): inserted confirmed, one statement.
        donation = ledger.donation_new(
            campaign=campaign,
            source=source,
            external_id=parsed.donation_external_id,
            amount_minor=parsed.amount_minor,
            currency=parsed.currency,
            donor_name=parsed.donor_name,
            donor_email=parsed.donor_email,
            anonymous=parsed.anonymous,
            occurred_at=parsed.occurred_at,
            frequency=parsed.extra.get("frequency", Donation.Frequency.ONCE),
        )
    else:
        _same_campaign(donation, campaign)
        if (donation.amount_minor, donation.currency) != (parsed.amount_minor, parsed.currency):
            raise EventError(
                f"amount mismatch: event says {parsed.amount_minor} {parsed.currency}, "
                f"donation {donation} expects {donation.amount_minor} {donation.currency}"
            )
    event.donation = ledger.donation_confirm(total=total, donation=donation, at=at)
    _apply_deferred_refunds(total, event.provider, donation, parsed.donation_external_id)
    return PaymentEvent.Status.PROCESSED


def _same_campaign(donation: Donation, campaign: Campaign) -> None:
    # Applying it would move money of a campaign whose counter this transaction does not hold.
    if donation.campaign_id != campaign.pk:
        raise EventError(f"donation {donation} belongs to another campaign than {campaign.slug!r}")


def _apply_deferred_refunds(total: CampaignTotal, provider: str, donation: Donation, event_external_id: str) -> None:
    # The counter is locked and was read in this transaction: zero means no refund of this
    # campaign is waiting (deferring one increments it under the same lock), so no query.
    if total.deferred_events == 0:
        return
    # A pledge found by its reference keeps its own external id, while the provider's refund
    # names the payment the way the success event did (Stripe: the PaymentIntent): match both.
    deferred = PaymentEvent.objects.select_for_update().filter(
        provider=provider,
        donation_external_id__in={donation.external_id, event_external_id},
        status=PaymentEvent.Status.DEFERRED,
    )
    source = WEBHOOK_SOURCES[provider]
    applied = 0
    for refund_event in deferred.order_by("received_at", "pk"):
        parsed = source.parse(refund_event.body.encode())
        _refund_once(total, donation, parsed, refund_event.event_id)
        refund_event.status = PaymentEvent.Status.PROCESSED
        refund_event.processed_at = timezone.now()
        refund_event.donation = donation
        refund_event.last_error = ""
        refund_event.save(update_fields=["status", "processed_at", "donation", "last_error"])
        applied += 1
    if applied:
        total.deferred_events = max(0, total.deferred_events - applied)
        total.save(update_fields=["deferred_events"])


def _apply_refunded(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    donation = _find_donation(source, parsed, lock=True)
    if donation is None or donation.status not in ledger.COUNTED_STATUSES:
        event.last_error = "waiting for the donation's success event"
        total.deferred_events += 1
        total.save(update_fields=["deferred_events"])
        return PaymentEvent.Status.DEFERRED
    _same_campaign(donation, campaign)
    event.donation = donation
    applied = _refund_once(total, donation, parsed, event.event_id)
    if applied is None:
        event.last_error = "ignored: this dispute's withdrawal was already applied"
    elif applied < parsed.amount_minor:
        event.last_error = f"refund capped at {applied}: only that much was left on the donation"
    return PaymentEvent.Status.PROCESSED


def _dispute_note(parsed: NormalizedEvent, step: str) -> str:
    return f"dispute {parsed.extra['dispute']} {step}"


def _refund_once(total: CampaignTotal, donation: Donation, parsed: NormalizedEvent, event_id: str) -> int | None:
    """Apply a refund-like event; None when it is a dispute whose withdrawal was already applied
    (Stripe announces one withdrawal with several events). Caller holds the campaign's lock."""
    note = event_id
    if parsed.extra.get("dispute"):
        note = _dispute_note(parsed, "withdrawn")
        if LedgerEntry.objects.filter(donation_id=donation.pk, note=note).exists():
            return None
    return ledger.donation_refund(total=total, donation=donation, amount_minor=parsed.amount_minor, note=note)


def _apply_reinstated(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    donation = _find_donation(source, parsed, lock=True)
    if donation is None:
        raise EventError("no donation for this dispute")
    _same_campaign(donation, campaign)
    event.donation = donation
    entries = LedgerEntry.objects.filter(donation_id=donation.pk)
    withdrawn = entries.filter(note=_dispute_note(parsed, "withdrawn")).first()
    if withdrawn is None:
        raise EventError(f"dispute {parsed.extra['dispute']}: no withdrawal applied yet, nothing to reinstate")
    note = _dispute_note(parsed, "reinstated")
    if entries.filter(note=note).exists():
        event.last_error = "ignored: this dispute's funds were already reinstated"
        return PaymentEvent.Status.PROCESSED
    ledger.donation_reinstate(
        total=total, donation=donation, amount_minor=min(parsed.amount_minor, -withdrawn.delta_minor), note=note
    )
    return PaymentEvent.Status.PROCESSED


def _apply_failed(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    donation = _find_donation(source, parsed, lock=True)
    if donation is None:
        donation = ledger.donation_new(
            campaign=campaign,
            source=source,
            external_id=parsed.donation_external_id,
            amount_minor=parsed.amount_minor,
            currency=parsed.currency,
            donor_name=parsed.donor_name,
            donor_email=parsed.donor_email,
            anonymous=parsed.anonymous,
            occurred_at=parsed.occurred_at,
        )
    else:
        _same_campaign(donation, campaign)
    if donation.status != Donation.Status.PENDING:
        event.last_error = f"ignored: donation is already {donation.status}"
    event.donation = ledger.donation_fail(total=total, donation=donation)
    return PaymentEvent.Status.PROCESSED


_APPLY = {
    SUCCEEDED: _apply_succeeded,
    REFUNDED: _apply_refunded,
    FAILED: _apply_failed,
    REINSTATED: _apply_reinstated,
}


def _parse(event: PaymentEvent) -> NormalizedEvent:
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


def _apply(event: PaymentEvent) -> str:
    parsed = _parse(event)
    source = WEBHOOK_SOURCES[event.provider]
    if parsed.kind == IGNORED:
        return PaymentEvent.Status.PROCESSED
    # Lock order: event (held by the caller) → campaign total → donation.
    total = ledger.total_lock_by_slug(slug=parsed.campaign_slug)
    if total is None:
        raise EventError(f"unknown campaign {parsed.campaign_slug!r}")
    campaign = total.campaign
    if parsed.currency != campaign.currency:
        raise EventError(
            f"currency mismatch: event in {parsed.currency}, campaign {campaign.slug!r} in {campaign.currency}"
        )
    return _APPLY[parsed.kind](event, parsed, campaign, source.source, total)


def deferred_refunds_count(*, campaign_id: int) -> int:
    """The refund events waiting for their donation's success that name this campaign: what its
    counter's `deferred_events` must be (reconcile recounts it; few events ever wait)."""
    slug = Campaign.objects.values_list("slug", flat=True).get(pk=campaign_id)
    count = 0
    for event in PaymentEvent.objects.filter(status=PaymentEvent.Status.DEFERRED).only("provider", "body"):
        try:
            count += _parse(event).campaign_slug == slug
        except EventError:
            continue
    return count


def payment_event_process(*, event_id: int) -> PaymentEvent:
    """Apply one stored event. Safe to run twice, concurrently or after a crash."""
    try:
        with transaction.atomic():
            event = PaymentEvent.objects.select_for_update().get(pk=event_id)
            if event.status != PaymentEvent.Status.RECEIVED:
                return event
            event.attempts += 1
            event.last_error = ""
            event.status = _apply(event)
            event.processed_at = timezone.now() if event.status != PaymentEvent.Status.DEFERRED else None
            event.save(update_fields=["status", "attempts", "last_error", "processed_at", "donation"])
        return event
    except (EventError, ledger.LedgerError) as exc:
        error = exc
    # A business error rolled the whole transaction back (no partial money move); the event is
    # kept, marked failed in a transaction of its own. (Cheaper than a savepoint on every event.)
    with transaction.atomic():
        event = PaymentEvent.objects.select_for_update().get(pk=event_id)
        if event.status != PaymentEvent.Status.RECEIVED:
            return event
        event.attempts += 1
        event.status = PaymentEvent.Status.FAILED
        event.last_error = str(error)
        event.processed_at = timezone.now()
        event.donation = None
        event.save(update_fields=["status", "attempts", "last_error", "processed_at", "donation"])
    logger.warning("payment event %s failed: %s", event, error)
    return event


def payment_event_retry(*, event_id: int) -> PaymentEvent:
    """An editor's retry of a failed event: back to `received`, then enqueued."""
    with transaction.atomic():
        updated = PaymentEvent.objects.filter(pk=event_id, status=PaymentEvent.Status.FAILED).update(
            status=PaymentEvent.Status.RECEIVED, last_error=""
        )
        if updated:
            queue.send("process_payment_event", event_id)
    return PaymentEvent.objects.get(pk=event_id)


def unprocessed_events_sweep(*, older_than_seconds: int) -> list[int]:
    """Re-enqueue events still `received` after a while: the broker lost them, or a worker died."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        PaymentEvent.objects.filter(status=PaymentEvent.Status.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:5000]
    )
    for event_id in ids:
        queue.send("process_payment_event", event_id)
    if ids:
        logger.info("sweeper re-enqueued %d unprocessed payment events", len(ids))
    return ids
