"""Webhook intake: store the raw event first, apply it later in a worker, exactly once.

Applying is order-independent: a refund that arrives before its donation's success is
deferred and applied in the success's transaction, so any delivery order ends the same.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from campaigns.models import Campaign, CampaignTotal, Donation, LedgerEntry, PaymentEvent
from campaigns.providers import get_provider
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
    from campaigns.tasks import enqueue_event

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
    transaction.on_commit(lambda: enqueue_event(stored.pk))
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
        event.donation = ledger.donation_insert_confirmed_locked(
            total=total,
            campaign=campaign,
            at=at,
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
        _apply_deferred_refunds(total, event.provider, event.donation, parsed.donation_external_id)
        return PaymentEvent.Status.PROCESSED
    if donation.campaign_id != campaign.pk:
        raise EventError(f"donation {donation} belongs to another campaign than {campaign.slug!r}")
    elif (donation.amount_minor, donation.currency) != (parsed.amount_minor, parsed.currency):
        raise EventError(
            f"amount mismatch: event says {parsed.amount_minor} {parsed.currency}, "
            f"donation {donation} expects {donation.amount_minor} {donation.currency}"
        )
    event.donation = donation
    ledger.donation_confirm_locked(total=total, donation=donation, at=at)
    _apply_deferred_refunds(total, event.provider, donation, parsed.donation_external_id)
    return PaymentEvent.Status.PROCESSED


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
    handler = get_provider(provider)
    settled = 0
    for refund_event in deferred.order_by("received_at", "pk"):
        refund_event.last_error = ""
        try:
            parsed = handler.parse(refund_event.body.encode())
            if parsed.campaign_slug == total.campaign.slug:
                settled += 1
            else:
                # It waits under the campaign it names (and fails the check below): that
                # campaign's counter is the one that counted it.
                CampaignTotal.objects.filter(campaign__slug=parsed.campaign_slug).update(
                    deferred_events=Greatest(F("deferred_events") - 1, 0)
                )
            # A savepoint: a refund that fails its checks fails alone, the success still counts.
            with transaction.atomic():
                _refund_apply(refund_event, parsed, total.campaign, donation)
            refund_event.status = PaymentEvent.Status.PROCESSED
        except PayloadError as exc:
            refund_event.status, refund_event.last_error = PaymentEvent.Status.FAILED, f"unusable payload: {exc}"
        except (EventError, ledger.LedgerError) as exc:
            refund_event.status, refund_event.last_error = PaymentEvent.Status.FAILED, str(exc)
            logger.warning("deferred refund %s failed: %s", refund_event, exc)
        refund_event.processed_at = timezone.now()
        refund_event.donation = donation
        refund_event.save(update_fields=["status", "processed_at", "donation", "last_error"])
    if settled:
        # An UPDATE, not total.save(): each refund above saved the counter through its own copy.
        CampaignTotal.objects.filter(pk=total.pk).update(
            deferred_events=Greatest(F("deferred_events") - settled, 0)
        )


def _apply_refunded(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    donation = _find_donation(source, parsed)
    if donation is None or donation.status not in (Donation.Status.CONFIRMED, Donation.Status.REFUNDED):
        event.last_error = "waiting for the donation's success event"
        total.deferred_events += 1
        total.save(update_fields=["deferred_events"])
        return PaymentEvent.Status.DEFERRED
    _refund_apply(event, parsed, campaign, donation)
    return PaymentEvent.Status.PROCESSED


def _refund_apply(event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, donation: Donation) -> None:
    """One refund's checks and effect, the same whether it came after its donation or waited for
    it: the event's campaign and currency must be the donation's; it takes at most what is left."""
    if donation.campaign_id != campaign.pk or parsed.campaign_slug != campaign.slug:
        raise EventError(f"donation {donation} belongs to another campaign than {parsed.campaign_slug!r}")
    if parsed.currency != donation.currency:
        raise EventError(f"currency mismatch: refund in {parsed.currency}, donation {donation} in {donation.currency}")
    event.donation = donation
    applied = _refund_once(donation, parsed, event.event_id, provider=event.provider)
    if applied is None:
        event.last_error = "ignored: this dispute's withdrawal was already applied"
    elif applied == 0 and parsed.amount_minor > 0:
        event.last_error = "ignored: this refund was already counted"
    elif applied < parsed.amount_minor:
        event.last_error = f"refund capped at {applied}: only that much was left on the donation"


def _dispute_note(parsed: NormalizedEvent, step: str) -> str:
    return f"dispute {parsed.extra['dispute']} {step}"


def refund_identities(parsed: NormalizedEvent) -> list[tuple[str, int]]:
    """(provider refund id, amount) of each refund an event announces. Stripe's Refund objects
    carry their own id; a generic event may name its refund (`data.refund_id`), else the event
    is the refund."""
    refunds = parsed.extra.get("refunds")
    if refunds:
        return [(str(refund_id), int(amount)) for refund_id, amount in refunds]
    return [(parsed.extra.get("refund_id") or parsed.event_id, parsed.amount_minor)]


def _refund_once(donation: Donation, parsed: NormalizedEvent, event_id: str, *, provider: str = "") -> int | None:
    """Apply a refund-like event; None when it is a dispute whose withdrawal was already applied
    (Stripe announces one withdrawal with several events). Each refund counts once by its
    provider id. Caller holds the campaign's lock."""
    if parsed.extra.get("dispute"):
        note = _dispute_note(parsed, "withdrawn")
        if LedgerEntry.objects.filter(donation_id=donation.pk, note=note).exists():
            return None
        return ledger.donation_refund(donation_id=donation.pk, amount_minor=parsed.amount_minor, note=note)
    applied = 0
    for refund_id, amount in refund_identities(parsed):
        if amount > 0 and not _refund_known_failed(provider, refund_id):
            applied += ledger.donation_refund(
                donation_id=donation.pk, amount_minor=amount, note=event_id, refund_id=refund_id[:255]
            )
    return applied


def _refund_known_failed(provider: str, refund_id: str) -> bool:
    """A refund whose failure was announced already (events may arrive in any order): its
    creation must not count it afterwards. Only on the refund path, rare next to gifts."""
    return bool(provider) and PaymentEvent.objects.filter(
        provider=provider, event_type=REINSTATED, body__contains=f'"{refund_id}"'
    ).exclude(status=PaymentEvent.Status.RECEIVED).exists()


def _refund_reversal_note(refund_id: str) -> str:
    return f"refund {refund_id} failed"


def _apply_refund_failed(event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, donation: Donation) -> str:
    """A refund that failed after it was counted gives its money back, once; one never counted
    moves nothing (and _refund_known_failed keeps it from being counted later)."""
    if donation.campaign_id != campaign.pk or parsed.currency != donation.currency:
        raise EventError(f"donation {donation} belongs to another campaign or currency than this refund")
    event.donation = donation
    refund_id = parsed.extra["refund_reversed"]
    entries = LedgerEntry.objects.filter(donation_id=donation.pk)
    counted = entries.filter(refund_id=refund_id).first()
    if counted is None:
        event.last_error = f"ignored: refund {refund_id} failed before it was counted"
    elif entries.filter(note=_refund_reversal_note(refund_id)).exists():
        event.last_error = f"ignored: refund {refund_id}'s failure was already applied"
    else:
        ledger.donation_reinstate(donation_id=donation.pk, amount_minor=-counted.delta_minor,
                                  note=_refund_reversal_note(refund_id))
    return PaymentEvent.Status.PROCESSED


def _apply_reinstated(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    donation = _find_donation(source, parsed)
    if parsed.extra.get("refund_reversed"):
        if donation is None:
            raise EventError("no donation for this failed refund yet: retry once its payment is applied")
        return _apply_refund_failed(event, parsed, campaign, donation)
    if donation is None:
        raise EventError("no donation for this dispute")
    if donation.campaign_id != campaign.pk:
        raise EventError(f"donation {donation} belongs to another campaign than {campaign.slug!r}")
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
        donation_id=donation.pk, amount_minor=min(parsed.amount_minor, -withdrawn.delta_minor), note=note
    )
    return PaymentEvent.Status.PROCESSED


def _apply_failed(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    donation = _find_donation(source, parsed)
    if donation is None:
        donation, _ = ledger.donation_create(
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
    elif donation.campaign_id != campaign.pk:
        # Like the other kinds; failing it would also lock a second campaign's counter.
        raise EventError(f"donation {donation} belongs to another campaign than {campaign.slug!r}")
    event.donation = donation
    if donation.status != Donation.Status.PENDING:
        event.last_error = f"ignored: donation is already {donation.status}"
    ledger.donation_fail(donation_id=donation.pk)
    return PaymentEvent.Status.PROCESSED


_APPLY = {
    SUCCEEDED: _apply_succeeded,
    REFUNDED: _apply_refunded,
    FAILED: _apply_failed,
    REINSTATED: _apply_reinstated,
}


def _apply(event: PaymentEvent) -> str:
    handler = get_provider(event.provider)
    if handler is None:
        raise EventError(f"unknown provider {event.provider!r}")
    try:
        parsed = handler.parse(event.body.encode())
    except PayloadError as exc:
        raise EventError(f"unusable payload: {exc}") from None
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
    return _APPLY[parsed.kind](event, parsed, campaign, handler.source, total)


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
    from campaigns.tasks import enqueue_event

    with transaction.atomic():
        updated = PaymentEvent.objects.filter(pk=event_id, status=PaymentEvent.Status.FAILED).update(
            status=PaymentEvent.Status.RECEIVED, last_error=""
        )
        if updated:
            transaction.on_commit(lambda: enqueue_event(event_id))
    return PaymentEvent.objects.get(pk=event_id)


def unprocessed_events_sweep(*, older_than_seconds: int) -> list[int]:
    """Re-enqueue events still `received` after a while: the broker lost them, or a worker died."""
    from campaigns.tasks import enqueue_event

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        PaymentEvent.objects.filter(status=PaymentEvent.Status.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:5000]
    )
    for event_id in ids:
        enqueue_event(event_id)
    if ids:
        logger.info("sweeper re-enqueued %d unprocessed payment events", len(ids))
    deferred_refunds_expire()
    return ids


def deferred_refunds_expire(*, now=None) -> list[int]:
    """Refunds still waiting for their donation's success after DEFERRED_REFUND_MAX_HOURS fail,
    with their error, where editors look (a success that never comes must not hide a refund)."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.DEFERRED_REFUND_MAX_HOURS)
    ids = list(
        PaymentEvent.objects.filter(status=PaymentEvent.Status.DEFERRED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:1000]
    )
    failed = []
    for event_id in ids:
        with transaction.atomic():
            event = PaymentEvent.objects.select_for_update().get(pk=event_id)
            if event.status != PaymentEvent.Status.DEFERRED:
                continue
            handler = get_provider(event.provider)
            try:
                slug = handler.parse(event.body.encode()).campaign_slug
            except PayloadError:
                slug = ""
            total = ledger.total_lock_by_slug(slug=slug) if slug else None
            if total is not None:
                CampaignTotal.objects.filter(pk=total.pk).update(
                    deferred_events=Greatest(F("deferred_events") - 1, 0)
                )
            event.status = PaymentEvent.Status.FAILED
            event.processed_at = now
            event.last_error = (
                f"the donation's success never came within {settings.DEFERRED_REFUND_MAX_HOURS} h: "
                "check the payment with the provider, then retry this refund"
            )
            event.save(update_fields=["status", "processed_at", "last_error"])
            failed.append(event_id)
    if failed:
        logger.warning("%d deferred refunds failed: their donation never succeeded", len(failed))
    return failed
