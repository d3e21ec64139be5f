"""The review queue's decisions and undo: an editor's hand on statement lines, each audited.

Money moves only through the ledger service (confirm, record, refund, correct), in the same
transaction as the line's new state and its audit entry. Undo reverses ledger entries (a
refund whose note names the line), never deletes them.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from campaigns.models import AuditLog, Campaign, Donation, StatementImport, StatementLine
from campaigns.services import ledger
from campaigns.services.audit import audit_record, require_reason
from campaigns.services.statement_matching import PAID, PAYABLE, booked_at

Outcome = StatementLine.Outcome


class ReviewError(ledger.LedgerError):
    """A decision the line's state refuses (already decided, wrong direction): the message says why."""


def _lock_line(line_id: int, *allowed: str) -> StatementLine:
    line = StatementLine.objects.select_for_update().get(pk=line_id)
    if line.outcome not in allowed:
        raise ReviewError(f"line {line_id} is {line.outcome}, not {' or '.join(allowed)}")
    return line


def _decided(line: StatementLine, actor, outcome: str, *, donation: Donation | None = None, reason: str = "",
             matched_by: str = "") -> None:
    line.outcome, line.matched_by, line.reason = outcome, matched_by, reason[:500]
    line.donation = donation
    line.decided_by = actor if getattr(actor, "is_authenticated", False) else None
    line.decided_at = timezone.now()
    line.save(update_fields=["outcome", "matched_by", "reason", "donation", "decided_by", "decided_at"])


def _audit(actor, action: str, line: StatementLine, donation: Donation | None, reason: str, **details) -> None:
    audit_record(
        actor=actor, action=action, reason=reason,
        campaign_id=donation.campaign_id if donation else None, donation_id=donation.pk if donation else None,
        amount_minor=line.amount_minor if line.direction == StatementLine.Direction.CREDIT else -line.amount_minor,
        currency=line.currency, details={"statement_line_id": line.pk, "import_id": line.statement_import_id,
                                         **details},
    )


def statement_line_assign(*, actor: AbstractBaseUser, line_id: int, donation_id: int, reason: str = "") -> Donation:
    """This credit pays that pledge: confirm it; a different amount is booked as a correction."""
    with transaction.atomic():
        line = _lock_line(line_id, Outcome.REVIEW)
        if line.direction != StatementLine.Direction.CREDIT:
            raise ReviewError("a debit is never a gift")
        pledge = Donation.objects.get(pk=donation_id)
        if pledge.status in PAID or pledge.status not in PAYABLE:
            raise ReviewError(f"{pledge} is already {pledge.status}: create a new gift instead")
        if pledge.currency != line.currency:
            raise ReviewError(f"{pledge} is in {pledge.currency}, the line in {line.currency}")
        total, pledge = ledger.donation_lock(donation_id=pledge.pk)
        ledger.donation_confirm(total=total, donation=pledge, at=booked_at(line))
        difference = line.amount_minor - pledge.amount_minor
        if difference:
            ledger.donation_correct(total=total, donation=pledge, delta_minor=difference,
                                    note=f"statement line {line.pk}: received {line.amount_minor}")
        _decided(line, actor, Outcome.MATCHED, donation=pledge, reason=reason, matched_by="editor")
        _audit(actor, AuditLog.Action.STATEMENT_ASSIGN, line, pledge, reason, pledge=pledge.reference,
               difference_minor=difference)
    return pledge


def statement_line_create_gift(
    *, actor: AbstractBaseUser, line_id: int, campaign_id: int, donor_of_donation_id: int | None = None,
    donor_name: str = "", anonymous: bool = False, reason: str = "",
) -> Donation:
    """A new confirmed gift for this credit: for a known donor (copied from one of their gifts),
    a named one, or an anonymous one."""
    with transaction.atomic():
        line = _lock_line(line_id, Outcome.REVIEW)
        if line.direction != StatementLine.Direction.CREDIT:
            raise ReviewError("a debit is never a gift")
        campaign = Campaign.objects.get(pk=campaign_id)
        if campaign.currency != line.currency:
            raise ReviewError(f"campaign {campaign.slug} counts in {campaign.currency}, the line is {line.currency}")
        donor = {"donor_name": "" if anonymous else (donor_name or line.payer_name)[:200], "anonymous": anonymous}
        if donor_of_donation_id and not anonymous:
            known = Donation.objects.get(pk=donor_of_donation_id)
            donor = {"donor_name": known.donor_name, "donor_email": known.donor_email, "anonymous": known.anonymous}
        donation, _created = ledger.donation_record(
            campaign=campaign, source=Donation.Source.BANK, amount_minor=line.amount_minor, at=booked_at(line),
            # One gift per decision: a gift undone and created again is a new one.
            external_id=f"statement-line:{line.pk}:{uuid.uuid4().hex[:12]}", occurred_at=booked_at(line), **donor,
        )
        _decided(line, actor, Outcome.MATCHED, donation=donation, reason=reason, matched_by="editor")
        _audit(actor, AuditLog.Action.STATEMENT_ASSIGN, line, donation, reason, new_gift=True,
               anonymous=donor["anonymous"])
    return donation


def statement_line_dismiss(*, actor: AbstractBaseUser, line_id: int, reason: str) -> StatementLine:
    """Not a gift (a bank fee, a transfer between own accounts): set aside, with the reason."""
    reason = require_reason(reason)
    with transaction.atomic():
        line = _lock_line(line_id, Outcome.REVIEW, Outcome.DEBIT)
        _decided(line, actor, Outcome.DISMISSED, reason=reason)
        _audit(actor, AuditLog.Action.STATEMENT_DISMISS, line, None, reason)
    return line


def statement_line_refund(*, actor: AbstractBaseUser, line_id: int, reason: str = "") -> int:
    """One click on a returned transfer: refund the gift it returns (the line's amount)."""
    with transaction.atomic():
        line = _lock_line(line_id, Outcome.REVIEW)
        refunds = [s for s in line.suggestions if s.get("kind") == "refund"]
        if line.direction != StatementLine.Direction.DEBIT or not refunds:
            raise ReviewError("only a returned transfer with a matched gift can be refunded here")
        donation_id = refunds[0]["donation_id"]
        total, donation = ledger.donation_lock(donation_id=donation_id)
        applied = ledger.donation_refund(total=total, donation=donation, amount_minor=line.amount_minor,
                                         note=f"returned transfer, statement line {line.pk}")
        _decided(line, actor, Outcome.MATCHED, donation=donation, reason=reason or "returned transfer",
                 matched_by="editor")
        _audit(actor, AuditLog.Action.REFUND, line, donation, reason or "returned transfer", refunded_minor=applied)
    return applied


def _reverse(line: StatementLine, note: str) -> int:
    """Take this line's money back out of its donation's ledger (a refund entry naming the line)."""
    if line.direction != StatementLine.Direction.CREDIT or line.donation_id is None:
        return 0
    if line.outcome != Outcome.MATCHED:
        return 0
    total, donation = ledger.donation_lock(donation_id=line.donation_id)
    if donation.status not in PAID or donation.balance_minor <= 0:
        return 0
    return ledger.donation_refund(total=total, donation=donation,
                                  amount_minor=min(line.amount_minor, donation.balance_minor), note=note[:500])


def statement_line_undo(*, actor: AbstractBaseUser, line_id: int, reason: str) -> int:
    """Undo one assignment: its money leaves the ledger (reversed, not deleted), the line goes
    back to the review queue. Returns the amount reversed."""
    reason = require_reason(reason)
    with transaction.atomic():
        line = _lock_line(line_id, Outcome.MATCHED)
        if line.direction != StatementLine.Direction.CREDIT:
            raise ReviewError("only a credit's assignment can be undone")
        donation = line.donation
        reversed_minor = _reverse(line, f"statement line {line.pk} undone: {reason}")
        _decided(line, actor, Outcome.REVIEW, reason=f"undone: {reason}")
        _audit(actor, AuditLog.Action.STATEMENT_UNDO, line, donation, reason, reversed_minor=reversed_minor)
    return reversed_minor


def statement_import_undo(*, actor: AbstractBaseUser, import_id: int, reason: str) -> int:
    """Undo a whole import: every gift it applied is reversed, every line set aside. The lines stay
    stored (their keys too): importing the same file again adds nothing. Returns the amount reversed."""
    reason = require_reason(reason)
    reversed_total = 0
    ids = list(StatementLine.objects.filter(statement_import_id=import_id).exclude(
        outcome=Outcome.DISMISSED).values_list("pk", flat=True))
    for line_id in ids:  # one transaction per line: a long import never holds its campaigns' locks
        with transaction.atomic():
            line = StatementLine.objects.select_for_update().get(pk=line_id)
            if line.outcome == Outcome.DISMISSED:
                continue
            donation = line.donation
            amount = _reverse(line, f"statement import {import_id} undone: {reason}")
            reversed_total += amount
            _decided(line, actor, Outcome.DISMISSED, donation=donation, reason=f"import undone: {reason}")
            if amount:
                _audit(actor, AuditLog.Action.STATEMENT_UNDO, line, donation, reason, reversed_minor=amount)
    with transaction.atomic():
        StatementImport.objects.filter(pk=import_id).update(status=StatementImport.Status.UNDONE,
                                                            finished_at=timezone.now())
        audit_record(actor=actor, action=AuditLog.Action.STATEMENT_UNDO, reason=reason,
                     details={"import_id": import_id, "lines": len(ids), "reversed_minor": reversed_total})
    return reversed_total
