"""Refund-like events: refunds, disputes, and refunds that failed after all. Each refund counts
once, by its provider identity, whatever order and however many events announce it.

A refund that arrives before its donation's success waits (`deferred`, counted on the campaign's
counter) and is applied in the success's transaction, so any delivery order ends the same.
Every function here runs in the event's transaction with the campaign's counter locked (see
services/ledger.py) and moves money only through the ledger's transitions, with that counter.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from campaigns.models import Campaign, CampaignTotal, Donation, LedgerEntry, PaymentEvent
from campaigns.providers.base import REINSTATED, EventError, NormalizedEvent
from campaigns.services import events, ledger

logger = logging.getLogger(__name__)


def refund_event_apply(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    """A refund (or a dispute's withdrawal): applied now, or deferred until its donation counts."""
    donation = events.donation_find(source=source, parsed=parsed, lock=True)
    if donation is None or donation.status not in ledger.COUNTED_STATUSES:
        event.last_error = "waiting for the donation's success event"
        total.deferred_events += 1
        total.save(update_fields=["deferred_events"])
        return PaymentEvent.Status.DEFERRED
    _refund_apply(total, event, parsed, campaign, donation)
    return PaymentEvent.Status.PROCESSED


def deferred_refunds_apply(*, total: CampaignTotal, provider: str, donation: Donation, event_external_id: str) -> None:
    """In a success's transaction: apply the refunds that waited for this donation."""
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
    settled = 0
    for refund_event in deferred.order_by("received_at", "pk"):
        refund_event.last_error = ""
        try:
            parsed = events.event_parse(refund_event)
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
                _refund_apply(total, refund_event, parsed, total.campaign, donation)
            refund_event.status = PaymentEvent.Status.PROCESSED
        except (EventError, ledger.LedgerError) as exc:
            # Whatever the failed refund moved in memory was rolled back with its savepoint:
            # read the two locked rows again, so what is saved and published next is the truth.
            total.refresh_from_db()
            donation.refresh_from_db()
            refund_event.status, refund_event.last_error = PaymentEvent.Status.FAILED, str(exc)
            logger.warning("deferred refund %s failed: %s", refund_event, exc)
        refund_event.processed_at = timezone.now()
        refund_event.donation = donation
        refund_event.save(update_fields=["status", "processed_at", "donation", "last_error"])
    if settled:
        total.deferred_events = max(0, total.deferred_events - settled)
        total.save(update_fields=["deferred_events"])


def _refund_apply(
    total: CampaignTotal, event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, donation: Donation
) -> None:
    """One refund's checks and effect, the same whether it came after its donation or waited for
    it: the event's campaign and currency must be the donation's; it takes at most what is left."""
    if donation.campaign_id != campaign.pk or parsed.campaign_slug != campaign.slug:
        raise EventError(f"donation {donation} belongs to another campaign than {parsed.campaign_slug!r}")
    if parsed.currency != donation.currency:
        raise EventError(f"currency mismatch: refund in {parsed.currency}, donation {donation} in {donation.currency}")
    event.donation = donation
    applied = _refund_once(total, donation, parsed, event.event_id, provider=event.provider)
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


def _refund_once(
    total: CampaignTotal, donation: Donation, parsed: NormalizedEvent, event_id: str, *, provider: str = ""
) -> int | None:
    """Apply a refund-like event; None when it is a dispute whose withdrawal was already applied
    (Stripe announces one withdrawal with several events). Each refund counts once by its
    provider id."""
    if parsed.extra.get("dispute"):
        note = _dispute_note(parsed, "withdrawn")
        if LedgerEntry.objects.filter(donation_id=donation.pk, note=note).exists():
            return None
        return ledger.donation_refund(total=total, donation=donation, amount_minor=parsed.amount_minor, note=note)
    applied = 0
    for refund_id, amount in refund_identities(parsed):
        if amount > 0 and not _refund_known_failed(provider, refund_id):
            applied += ledger.donation_refund(
                total=total, donation=donation, amount_minor=amount, note=event_id, refund_id=refund_id[:255]
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


def reinstate_event_apply(
    event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, source: str, total: CampaignTotal
) -> str:
    """Money a refund-like movement took comes back: a dispute won, or a refund that failed."""
    donation = events.donation_find(source=source, parsed=parsed, lock=True)
    if parsed.extra.get("refund_reversed"):
        if donation is None:
            raise EventError("no donation for this failed refund yet: retry once its payment is applied")
        return _refund_failed_apply(total, event, parsed, campaign, donation)
    if donation is None:
        raise EventError("no donation for this dispute")
    events.same_campaign_check(donation, campaign)
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


def _refund_failed_apply(
    total: CampaignTotal, event: PaymentEvent, parsed: NormalizedEvent, campaign: Campaign, donation: Donation
) -> str:
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
        ledger.donation_reinstate(total=total, donation=donation, amount_minor=-counted.delta_minor,
                                  note=_refund_reversal_note(refund_id))
    return PaymentEvent.Status.PROCESSED


def deferred_refunds_expire(*, now: datetime | None = None) -> list[int]:
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
            try:
                slug = events.event_parse(event).campaign_slug
            except EventError:
                slug = ""
            total = ledger.total_lock_by_slug(slug=slug) if slug else None
            if total is not None:
                total.deferred_events = max(0, total.deferred_events - 1)
                total.save(update_fields=["deferred_events"])
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


def deferred_refunds_count(*, campaign_id: int) -> int:
    """The refund events waiting for their donation's success that name this campaign: what its
    counter's `deferred_events` must be (reconcile recounts it; few events ever wait)."""
    slug = Campaign.objects.values_list("slug", flat=True).get(pk=campaign_id)
    count = 0
    for event in PaymentEvent.objects.filter(status=PaymentEvent.Status.DEFERRED).only("provider", "body"):
        try:
            count += events.event_parse(event).campaign_slug == slug
        except EventError:
            continue
    return count
