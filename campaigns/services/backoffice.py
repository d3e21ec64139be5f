"""Editors' and finance staff's actions from the admin: every money move goes through the
ledger service and leaves an audit entry in the same transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from campaigns.models import AuditLog, Campaign, Donation, PaymentEvent
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
    if amount_minor <= 0:
        raise ledger.LedgerError("an amount must be positive")
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
    *, actor: AbstractBaseUser, donation_id: int, amount_minor: int | None, reason: str
) -> int:
    """Refund all (amount None) or part of a donation; returns the amount refunded."""
    reason = require_reason(reason)
    with transaction.atomic():
        total, donation = ledger.donation_lock(donation_id=donation_id)
        applied = ledger.donation_refund(total=total, donation=donation, amount_minor=amount_minor, note=reason[:500])
        if applied == 0:
            raise ledger.LedgerError("nothing left to refund on this donation")
        if amount_minor is not None and applied < amount_minor:
            # Rolls the capped refund back: staff asked for more than is left, tell them.
            raise ledger.LedgerError(f"only {applied} is left to refund on this donation")
        audit_record(
            actor=actor,
            action=AuditLog.Action.REFUND,
            reason=reason,
            campaign_id=donation.campaign_id,
            donation_id=donation.pk,
            amount_minor=-applied,
            currency=donation.currency,
            details={"requested_minor": amount_minor},
        )
    return applied


def donation_staff_correct(*, actor: AbstractBaseUser, donation_id: int, delta_minor: int, reason: str) -> int:
    """Append a correction (positive or negative) to a confirmed donation."""
    reason = require_reason(reason)
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
