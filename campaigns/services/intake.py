"""Webhook intake: store the raw event first, apply it later in a worker, exactly once.

Applying runs in one transaction: lock the event, then the campaign's counter (the one
`CampaignTotal` object every transition of this event uses), then the donation. Gifts and
failures are here; refunds, disputes and the refunds that wait for their gift are in refunds.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import queue
from campaigns.models import Campaign, CampaignTotal, Donation, PaymentEvent
from campaigns.providers import WEBHOOK_SOURCES
from campaigns.providers.base import (
    FAILED,
    IGNORED,
    REFUNDED,
    REINSTATED,
    SUBSCRIPTION_CHANGED,
    SUCCEEDED,
    EventError,
    NormalizedEvent,
)
from campaigns.services import events, ledger, refunds, subscriptions

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


def _apply_succeeded(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    # The hot path: the campaign's counter is locked by the caller, so every query saved here
    # shortens the time other events of the same campaign wait.
    donation = events.donation_find(source=source, parsed=parsed, lock=True)
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
        events.same_campaign_check(donation, campaign)
        if (donation.amount_minor, donation.currency) != (parsed.amount_minor, parsed.currency):
            raise EventError(
                f"amount mismatch: event says {parsed.amount_minor} {parsed.currency}, "
                f"donation {donation} expects {donation.amount_minor} {donation.currency}"
            )
    event.donation = ledger.donation_confirm(total=total, donation=donation, at=at)
    if parsed.extra.get("subscription"):
        subscriptions.instalment_link(donation=donation, campaign=campaign, source=source,
                                      subscription_id=parsed.extra["subscription"],
                                      customer_id=parsed.extra.get("customer", ""))
    refunds.deferred_refunds_apply(
        total=total, provider=event.provider, donation=donation, event_external_id=parsed.donation_external_id
    )
    return PaymentEvent.Status.PROCESSED


def _apply_failed(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    donation = events.donation_find(source=source, parsed=parsed, lock=True)
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
        events.same_campaign_check(donation, campaign)
    if donation.status != Donation.Status.PENDING:
        event.last_error = f"ignored: donation is already {donation.status}"
    event.donation = ledger.donation_fail(total=total, donation=donation)
    return PaymentEvent.Status.PROCESSED


_APPLY = {
    SUCCEEDED: _apply_succeeded,
    REFUNDED: refunds.refund_event_apply,
    FAILED: _apply_failed,
    REINSTATED: refunds.reinstate_event_apply,
}


def _apply(event: PaymentEvent) -> str:
    parsed = events.event_parse(event)
    if parsed.kind == IGNORED:
        return PaymentEvent.Status.PROCESSED
    if parsed.kind == SUBSCRIPTION_CHANGED:
        # No money: a worker re-reads the monthly gift from the provider after this commit; the
        # request is recorded with the event's processing, for the sweeper if the task is lost.
        subscriptions.subscription_sync_request(provider=event.provider, subscription_id=parsed.extra["subscription"])
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
    return _APPLY[parsed.kind](event, parsed, campaign, WEBHOOK_SOURCES[event.provider].source, total)


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
    except OperationalError:
        raise  # the database itself (down, a lock timeout): the task's retries and the sweeper
    except Exception as exc:
        _unexpected_error_record(event_id=event_id, error=exc)
        raise
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


def _unexpected_error_record(*, event_id: int, error: Exception) -> None:
    """A bug or a payload no check foresaw: count the attempt, keep the error, and after
    EVENT_MAX_ATTEMPTS stop (failed, shown to editors) instead of being re-sent forever."""
    with transaction.atomic():
        event = PaymentEvent.objects.select_for_update().get(pk=event_id)
        if event.status != PaymentEvent.Status.RECEIVED:
            return
        event.attempts += 1
        event.last_error = f"unexpected error ({event.attempts}/{settings.EVENT_MAX_ATTEMPTS}): " \
            f"{type(error).__name__}: {error}"[:2000]
        if event.attempts >= settings.EVENT_MAX_ATTEMPTS:
            event.status = PaymentEvent.Status.FAILED
            event.processed_at = timezone.now()
        event.save(update_fields=["status", "attempts", "last_error", "processed_at"])
    logger.exception("payment event %s raised (attempt %d)", event, event.attempts, exc_info=error)


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
    """Re-enqueue events still `received` after a while: the broker lost them, or a worker died;
    and fail the refunds that waited too long for their gift (refunds.deferred_refunds_expire).

    An event is re-sent at most once per `older_than_seconds`: behind a backlog, the copy sent last
    time is most likely still queued, and re-sending it on every sweep would only lengthen the queue."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    with transaction.atomic():
        ids = list(
            PaymentEvent.objects.filter(status=PaymentEvent.Status.RECEIVED, received_at__lt=cutoff)
            .filter(Q(swept_at__isnull=True) | Q(swept_at__lt=cutoff))
            .order_by("received_at")
            .values_list("pk", flat=True)[:5000]
        )
        PaymentEvent.objects.filter(pk__in=ids).update(swept_at=now)
        for event_id in ids:
            queue.send("process_payment_event", event_id)
    if ids:
        logger.info("sweeper re-enqueued %d unprocessed payment events", len(ids))
    refunds.deferred_refunds_expire()
    return ids
