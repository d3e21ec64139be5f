"""Editors' and finance staff's actions from the admin: every money move goes through the
ledger service and leaves an audit entry in the same transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from campaigns.models import MAX_AMOUNT_MINOR, AuditLog, Campaign, Donation, PaymentEvent
from campaigns.providers import stripe as stripe_provider
from campaigns.services import intake, ledger
from campaigns.services.audit import audit_record, require_reason

MANUAL_METHODS = ("cheque", "cash", "transfer")


class DuplicateEntry(ledger.LedgerError):
    """The same offline gift (method + its number) was already entered."""

    def __init__(self, message: str, *, donation: Donation):
        super().__init__(message)
        self.donation = donation


def donation_manual_enter(
    *,
    actor: AbstractBaseUser,
    campaign_id: int,
    method: str,
    amount_minor: int,
    received_at: datetime,
    number: str = "",
    donor_name: str = "",
    donor_email: str = "",
    anonymous: bool = False,
    note: str = "",
    entry_key: str = "",
    pledge_reference: str = "",
) -> Donation:
    """Record an offline gift (cheque, cash, bank transfer) as confirmed money.

    Idempotent: with a number (cheque or transfer number) entering the same cheque twice is
    refused instead of counted twice; without one, the form's own key (`entry_key`, one per form
    shown) makes a double-submitted form count once. With `pledge_reference`, a bank transfer
    settles the reader's pending pledge (confirmed, no longer "pending") instead of adding a gift.
    """
    if method not in MANUAL_METHODS:
        raise ledger.LedgerError(f"unknown method {method!r}")
    if not 0 < amount_minor <= MAX_AMOUNT_MINOR:
        raise ledger.LedgerError(f"an amount must be positive and at most {MAX_AMOUNT_MINOR}")
    number = number.strip()
    if pledge_reference.strip():
        return _pledge_settle(
            actor=actor, campaign_id=campaign_id, reference=pledge_reference.strip().upper(),
            amount_minor=amount_minor, received_at=received_at, method=method, number=number, note=note,
        )
    external_id = f"{method}:{number}" if number else f"{method}:entry:{entry_key.strip() or uuid.uuid4().hex}"
    with transaction.atomic():
        campaign = Campaign.objects.get(pk=campaign_id)
        donation, created = ledger.donation_record(
            campaign=campaign,
            source=Donation.Source.MANUAL,
            external_id=external_id,
            amount_minor=amount_minor,
            at=received_at,
            donor_name=donor_name,
            donor_email=donor_email,
            anonymous=anonymous,
            occurred_at=received_at,
        )
        if not created:
            raise DuplicateEntry(f"{method} {number or 'entry'} is already recorded as {donation}", donation=donation)
        audit_record(
            actor=actor,
            action=AuditLog.Action.MANUAL_ENTRY,
            reason=note,
            campaign_id=campaign.pk,
            donation_id=donation.pk,
            amount_minor=amount_minor,
            currency=campaign.currency,
            details={"method": method, "number": number, "external_id": external_id},
        )
    return donation


def _pledge_settle(
    *, actor: AbstractBaseUser, campaign_id: int, reference: str, amount_minor: int, received_at: datetime,
    method: str, number: str, note: str,
) -> Donation:
    """A reader's bank transfer arrived: confirm their pledge, so the money leaves "pending"."""
    with transaction.atomic():
        pledge = (
            Donation.objects.filter(campaign_id=campaign_id, reference=reference, source=Donation.Source.BANK)
            .select_related("campaign")
            .first()
        )
        if pledge is None:
            raise ledger.LedgerError(f"no bank-transfer pledge {reference} in this campaign")
        if pledge.status != Donation.Status.PENDING:
            raise DuplicateEntry(f"pledge {reference} is already {pledge.status}", donation=pledge)
        if (pledge.amount_minor, pledge.currency) != (amount_minor, pledge.campaign.currency):
            raise ledger.LedgerError(
                f"the transfer ({amount_minor}) differs from pledge {reference} ({pledge.amount_minor}): "
                "enter it as a separate gift without the reference"
            )
        total, pledge = ledger.donation_lock(donation_id=pledge.pk)
        donation = ledger.donation_confirm(total=total, donation=pledge, at=received_at)
        audit_record(
            actor=actor,
            action=AuditLog.Action.MANUAL_ENTRY,
            reason=note,
            campaign_id=campaign_id,
            donation_id=donation.pk,
            amount_minor=amount_minor,
            currency=donation.currency,
            details={"method": method, "number": number, "settled_pledge": reference},
        )
    return donation


def donation_staff_refund(
    *, actor: AbstractBaseUser, donation_id: int, amount_minor: int | None, reason: str, request_key: str = ""
) -> int:
    """Refund all (amount None) or part of a donation; returns the amount refunded.

    A Stripe gift is refunded through Stripe's API and recorded under the Refund's id, so the
    refund.created webhook that follows changes nothing; a generic-provider gift is refused (the
    provider's own event is the truth); offline gifts get a ledger entry only."""
    reason = require_reason(reason)
    donation = Donation.objects.select_related("campaign").get(pk=donation_id)
    if donation.source == Donation.Source.GENERIC:
        raise ledger.LedgerError(
            "refund this gift with its payment provider: its refund event will count it here"
        )
    if donation.source == Donation.Source.STRIPE:
        return _stripe_staff_refund(
            actor=actor, donation=donation, amount_minor=amount_minor, reason=reason, request_key=request_key
        )
    with transaction.atomic():
        total, donation = ledger.donation_lock(donation_id=donation_id)
        applied = ledger.donation_refund(total=total, donation=donation, amount_minor=amount_minor, note=reason[:500])
        if applied == 0:
            raise ledger.LedgerError("nothing left to refund on this donation")
        if amount_minor is not None and applied < amount_minor:
            # Rolls the capped refund back: staff asked for more than is left, tell them.
            raise ledger.LedgerError(f"only {applied} is left to refund on this donation")
        _refund_audit(actor, donation, applied, reason, {"requested_minor": amount_minor})
    return applied


def _refund_audit(actor: AbstractBaseUser, donation: Donation, applied: int, reason: str, details: dict) -> None:
    audit_record(
        actor=actor,
        action=AuditLog.Action.REFUND,
        reason=reason,
        campaign_id=donation.campaign_id,
        donation_id=donation.pk,
        amount_minor=-applied,
        currency=donation.currency,
        details=details,
    )


def _payment_intent_of(donation: Donation) -> str:
    """The PaymentIntent that paid a gift: its external id, or (a pledge found by its reference
    keeps the reference as external id) the one its confirming checkout event named."""
    if donation.external_id.startswith("pi_"):
        return donation.external_id
    return (
        PaymentEvent.objects.filter(provider="stripe", donation=donation, donation_external_id__startswith="pi_")
        .values_list("donation_external_id", flat=True)
        .first()
        or ""
    )


def _stripe_staff_refund(
    *, actor: AbstractBaseUser, donation: Donation, amount_minor: int | None, reason: str, request_key: str
) -> int:
    left = min(donation.amount_minor - donation.refunded_minor, donation.balance_minor)
    if donation.status not in (Donation.Status.CONFIRMED, Donation.Status.REFUNDED) or left <= 0:
        raise ledger.LedgerError("nothing left to refund on this donation")
    wanted = left if amount_minor is None else amount_minor
    if wanted > left:
        raise ledger.LedgerError(f"only {left} is left to refund on this donation")
    # Stripe first, outside any transaction (a network call must not hold the campaign's lock);
    # the key makes a double-submitted form one refund at Stripe too.
    key = f"jauge-refund-{donation.pk}-{request_key or uuid.uuid4().hex}"
    try:
        refund_id, refunded = stripe_provider.refund_create(
            donation=donation, payment_intent=_payment_intent_of(donation), amount_minor=wanted, idempotency_key=key
        )
    except stripe_provider.RefundUnavailable as exc:
        raise ledger.LedgerError(f"Stripe did not refund: {exc}") from exc
    # Should the record below fail (the gift changed meanwhile), Stripe's refund.created event
    # still counts the refund under the same id: it is never lost, never counted twice.
    with transaction.atomic():
        # Zero when the webhook got here first: the refund is counted, once, under its id.
        total, donation = ledger.donation_lock(donation_id=donation.pk)
        applied = ledger.donation_refund(
            total=total, donation=donation, amount_minor=refunded, note=reason[:500], refund_id=refund_id
        )
        _refund_audit(actor, donation, applied, reason,
                      {"requested_minor": amount_minor, "refund_id": refund_id, "stripe_amount_minor": refunded})
    return applied or refunded


def donation_staff_correct(*, actor: AbstractBaseUser, donation_id: int, delta_minor: int, reason: str) -> int:
    """Append a correction (positive or negative) to a confirmed donation."""
    reason = require_reason(reason)
    if not 0 < abs(delta_minor) <= MAX_AMOUNT_MINOR:
        raise ledger.LedgerError(f"a correction must be non-zero and at most {MAX_AMOUNT_MINOR} either way")
    with transaction.atomic():
        total, donation = ledger.donation_lock(donation_id=donation_id)
        entry = ledger.donation_correct(total=total, donation=donation, delta_minor=delta_minor, note=reason[:500])
        audit_record(
            actor=actor,
            action=AuditLog.Action.CORRECTION,
            reason=reason,
            campaign_id=donation.campaign_id,
            donation_id=donation.pk,
            amount_minor=delta_minor,
            currency=donation.currency,
            details={"ledger_entry_id": entry.pk},
        )
    return entry.pk


def payment_event_staff_retry(*, actor: AbstractBaseUser, event_id: int) -> bool:
    """Retry a failed event (it may move money once processed); False if it was not failed."""
    with transaction.atomic():
        event = PaymentEvent.objects.select_for_update().get(pk=event_id)
        if event.status != PaymentEvent.Status.FAILED:
            return False
        previous_error = event.last_error
        intake.payment_event_retry(event_id=event_id)
        audit_record(
            actor=actor,
            action=AuditLog.Action.EVENT_RETRY,
            reason=previous_error[:1000],
            details={"event": str(event), "event_pk": event.pk},
        )
    return True


def donations_export_record(*, actor: AbstractBaseUser, filters: str, campaign_id: int | None = None) -> None:
    """Exports carry personal data out of Jauge: they are logged too."""
    audit_record(actor=actor, action=AuditLog.Action.EXPORT, campaign_id=campaign_id, details={"filters": filters})


def pledges_void(*, actor: AbstractBaseUser, donation_ids: list[int], reason: str) -> int:
    """Void pending pledges in bulk (a wave of fake promises): each counts nowhere from now on,
    with one audit entry per pledge. Pledges no longer pending are left alone; returns how many
    were voided."""
    reason = require_reason(reason)
    voided = 0
    for donation_id in sorted(donation_ids):
        with transaction.atomic():
            before = Donation.objects.filter(pk=donation_id).values_list("status", flat=True).first()
            if before != Donation.Status.PENDING:
                continue
            total, donation = ledger.donation_lock(donation_id=donation_id)
            ledger.donation_fail(total=total, donation=donation, status=Donation.Status.FAILED)
            if donation.status != Donation.Status.FAILED:
                continue
            audit_record(
                actor=actor,
                action=AuditLog.Action.PLEDGE_VOID,
                reason=reason,
                campaign_id=donation.campaign_id,
                donation_id=donation.pk,
                amount_minor=donation.amount_minor,
                currency=donation.currency,
                details={"source": donation.source, "donor_confirmed": donation.pledge_confirmed_at is not None},
            )
            voided += 1
    return voided
