"""Money moves: the Donation state machine, the append-only ledger and the CampaignTotal counter.

The one posting path. A caller opens a transaction and locks the campaign's counter row first,
then the donation (`donation_locked`, or `total_lock` + a locking query): writers of one campaign
queue on that lock, so concurrent workers never lose an update, and the fixed lock order
(event → total → donation) rules out deadlocks. It then calls transitions — `donation_confirm`,
`donation_refund`, `donation_correct`, `donation_reinstate`, `donation_fail`, `donation_add` —
always with that one locked `CampaignTotal` object. Each transition checks the state, moves the
money in memory (`ledger_post`), saves the donation once and the counter once (`total_save`,
which publishes the campaign's progress after the commit from that same object).

A transition also accepts a donation that is not saved yet (a provider's event for a gift Jauge
had not seen): it is inserted directly in its new state, one INSERT instead of two statements.

Counting rules (the reconcile service recomputes them the same way from the ledger):
- total_minor = Σ ledger deltas;
- donation_count = donations whose Σ ledger deltas (balance_minor) is > 0;
- donor_count = distinct donor keys among those donations;
- pending_minor = amount of pending pledges that promise money (bank transfers) and that their
  donor confirmed (pledge_confirmed_at); the public figure caps it per campaign (selectors).
- matched_minor = Σ match entries (a sponsor's money: part of total_minor, never of a donation's
  balance_minor nor of the counts); a donation's matched_minor = Σ of its own match entries.

Matching gifts: a campaign's sponsor adds `match_ratio` × each gift whose confirmation date falls in
its window, until `match_cap_minor` is used (a partial match takes what is left). The match entry
is posted in the confirmation's own transaction, under the counter's lock, so concurrent gifts
never pass the cap; a gift is matched once (a database constraint, `ledger_match_once`). A refund
takes the sponsor's money back in the same proportion (all of it with the last of the gift), which
frees that much of the cap; a reinstated gift (a dispute won) is not matched again.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignTotal, Donation, LedgerEntry
from campaigns.services import receipts, tax_receipts
from campaigns.services.progress import progress_publish_on_commit

# Pledges from these sources are promised money shown as "pending" until they are matched.
PENDING_SOURCES = frozenset({Donation.Source.BANK})
# Money has entered the ledger for these (a refunded gift may be corrected or reinstated).
COUNTED_STATUSES = (Donation.Status.CONFIRMED, Donation.Status.REFUNDED)


class LedgerError(Exception):
    """A money change that the state machine refuses (the message says why)."""


# --- Locks ----------------------------------------------------------------------------------


def total_lock(*, campaign_id: int) -> CampaignTotal:
    """Lock (creating if needed) the campaign's counter row. Call inside a transaction."""
    # The row almost always exists: one locking SELECT on the hot path, creation only once.
    try:
        return CampaignTotal.objects.select_for_update().get(campaign_id=campaign_id)
    except CampaignTotal.DoesNotExist:
        CampaignTotal.objects.get_or_create(campaign_id=campaign_id)
        return CampaignTotal.objects.select_for_update().get(campaign_id=campaign_id)


def total_lock_by_slug(*, slug: str) -> CampaignTotal | None:
    """Lock the counter of the campaign with this slug (None: no such campaign), then read the
    campaign through it: read under the lock, it is current, and the snapshot published after
    commit is built from these two rows without reading them back. Call inside a transaction."""
    total = CampaignTotal.objects.select_for_update(of=("self",)).filter(campaign__slug=slug).first()
    if total is None:
        campaign_id = Campaign.objects.filter(slug=slug).values_list("pk", flat=True).first()
        if campaign_id is None:
            return None
        total = total_lock(campaign_id=campaign_id)
    total.campaign  # noqa: B018 (loads and caches the campaign row)
    return total


def donation_lock(*, donation_id: int) -> tuple[CampaignTotal, Donation]:
    """Lock a donation's campaign counter, then the donation. Call inside a transaction."""
    campaign_id = Donation.objects.values_list("campaign_id", flat=True).get(pk=donation_id)
    total = total_lock(campaign_id=campaign_id)
    return total, Donation.objects.select_for_update().get(pk=donation_id)


@contextmanager
def donation_locked(*, donation_id: int) -> Iterator[tuple[CampaignTotal, Donation]]:
    """A transaction holding a donation and its campaign's counter: `with donation_locked(…) as
    (total, donation): donation_refund(total=total, donation=donation, …)`."""
    with transaction.atomic():
        yield donation_lock(donation_id=donation_id)


# --- The counter and the ledger -------------------------------------------------------------


def total_save(total: CampaignTotal) -> None:
    """Save the counter once after a change: a new version, and its progress published on commit."""
    total.version += 1
    total.updated_at = timezone.now()
    total.save()
    progress_publish_on_commit(total=total)


def _other_counted_donation_of_donor(donation: Donation) -> bool:
    if donation.donor_key.startswith("d:"):
        return False  # no e-mail: a donor of one donation
    # Counted means a positive ledger balance (as reconcile counts), not the status: a gift
    # corrected to zero stays "confirmed", a refunded one brought back by a correction is counted.
    return (
        Donation.objects.filter(campaign_id=donation.campaign_id, donor_key=donation.donor_key, balance_minor__gt=0)
        .exclude(pk=donation.pk)
        .exists()
    )


def ledger_post(
    *, total: CampaignTotal, donation: Donation, delta_minor: int, kind: str, note: str = "", refund_id: str = "",
    donor_counted: bool | None = None,
) -> LedgerEntry:
    """Move the counter and the donation's balance by `delta_minor`, in memory, and return the
    ledger entry to append (not saved). The caller saves the donation, then the entry, then the
    counter (`total_save`). `donor_counted` (a batch's answer, read set-wise): whether another
    donation of this donor already counts; None asks the database when the count changes."""
    if delta_minor == 0:
        raise LedgerError("a ledger entry cannot be zero")
    before = donation.balance_minor
    after = before + delta_minor
    if after < 0:
        raise LedgerError(f"donation {donation.pk} would go below zero ({after})")
    if (before <= 0 < after or after <= 0 < before) and donor_counted is None:
        donor_counted = _other_counted_donation_of_donor(donation)
    if before <= 0 < after:
        total.donation_count += 1
        if not donor_counted:
            total.donor_count += 1
    elif after <= 0 < before:
        total.donation_count -= 1
        if not donor_counted:
            total.donor_count -= 1
    total.total_minor += delta_minor
    donation.balance_minor = after
    return LedgerEntry(campaign_id=donation.campaign_id, donation=donation, delta_minor=delta_minor, kind=kind,
                       note=note, refund_id=refund_id)


# --- Matching gifts ---------------------------------------------------------------------------


def _match_post(*, total: CampaignTotal, donation: Donation, delta_minor: int, note: str = "") -> LedgerEntry:
    """Move a sponsor's money on a gift, in memory: the counter's total and matched money and the
    gift's matched_minor (not its balance: the donor's own money is what counts a donation)."""
    if delta_minor == 0:
        raise LedgerError("a ledger entry cannot be zero")
    after = donation.matched_minor + delta_minor
    if after < 0:
        raise LedgerError(f"donation {donation.pk} would have a negative match ({after})")
    total.total_minor += delta_minor
    total.matched_minor += delta_minor
    donation.matched_minor = after
    return LedgerEntry(campaign_id=donation.campaign_id, donation=donation, delta_minor=delta_minor,
                       kind=LedgerEntry.Kind.MATCH, note=note)


def _match_new(*, total: CampaignTotal, donation: Donation) -> LedgerEntry | None:
    """The match entry of a gift being confirmed (not saved), or None: outside the window, or the
    cap used up. Reads the campaign through the locked counter (a campaign edit bumps the counter,
    so it cannot change meanwhile)."""
    campaign = total.campaign
    if donation.matched_minor or not campaign.match_window_contains(donation.confirmed_at):
        return None
    amount = min(donation.amount_minor * campaign.match_ratio, campaign.match_left(total.matched_minor))
    if amount <= 0:
        return None
    return _match_post(total=total, donation=donation, delta_minor=amount)


def _match_reverse(*, total: CampaignTotal, donation: Donation, applied: int, left_before: int,
                   note: str) -> LedgerEntry | None:
    """A refund of `applied` out of the `left_before` the donor had not been refunded takes the
    same share of the sponsor's money back (rounded down; the rest goes with the last refund)."""
    if donation.matched_minor <= 0:
        return None
    if donation.status == Donation.Status.REFUNDED or applied >= left_before:
        back = donation.matched_minor
    else:
        back = donation.matched_minor * applied // left_before
    if back <= 0:
        return None
    return _match_post(total=total, donation=donation, delta_minor=-back, note=f"match reversed: {note}"[:500])


def _save(donation: Donation, fields: list[str]) -> None:
    if donation.pk is None:
        donation.save(force_insert=True)
    else:
        donation.save(update_fields=fields)


def _pending_adjust(total: CampaignTotal, donation: Donation, sign: int) -> None:
    # Only a promise its donor confirmed is pending money (services/pledge_verification.py).
    if donation.source in PENDING_SOURCES and donation.pledge_confirmed_at is not None:
        total.pending_minor = max(0, total.pending_minor + sign * donation.amount_minor)


def _require_counted(donation: Donation, action: str) -> None:
    if donation.status not in COUNTED_STATUSES:
        raise LedgerError(f"donation {donation} is {donation.status}, not confirmed: nothing to {action}")


# --- Transitions: the caller holds the counter's lock (and the donation's, if saved) ----------


def personal_key(value: bytes) -> str:
    """A keyed hash of personal data (an e-mail, a client address) under DONOR_KEY_SECRET: what
    compares donors or clients without keeping who they are, and survives a SECRET_KEY rotation."""
    return hmac.new(settings.DONOR_KEY_SECRET.encode(), value, hashlib.sha256).hexdigest()[:40]


def donor_key_for(*, email: str) -> str:
    """One donor per e-mail address (keyed hash, so the key itself is no personal data)."""
    if email:
        return "e:" + personal_key(email.strip().lower().encode())
    return "d:" + uuid.uuid4().hex


def donation_new(*, campaign: Campaign, currency: str, donor_email: str = "", **fields) -> Donation:
    """A donation not saved yet, for a transition to insert in its state (pending by default)."""
    if currency != campaign.currency:
        raise LedgerError(f"currency {currency} does not match the campaign's {campaign.currency}")
    return Donation(campaign=campaign, currency=currency, donor_email=donor_email,
                    donor_key=donor_key_for(email=donor_email), **fields)


def donation_add(*, total: CampaignTotal, donation: Donation) -> Donation:
    """Insert a new pending donation; the money it promises (bank transfers) shows as pending."""
    donation.status = Donation.Status.PENDING
    donation.save(force_insert=True)
    if donation.source in PENDING_SOURCES:
        _pending_adjust(total, donation, +1)
        total_save(total)
    return donation


def donation_confirm(*, total: CampaignTotal, donation: Donation, at: datetime | None = None) -> Donation:
    """Confirm once: the amount enters the ledger. Retries and duplicates are no-ops."""
    if donation.status in COUNTED_STATUSES:
        return donation
    if donation.status == Donation.Status.PENDING and donation.pk is not None:
        _pending_adjust(total, donation, -1)
    # A failed or expired payment can still succeed later (a provider retry): money is money.
    entry = ledger_post(total=total, donation=donation, delta_minor=donation.amount_minor,
                        kind=LedgerEntry.Kind.CONFIRM)
    donation.status = Donation.Status.CONFIRMED
    donation.confirmed_at = at or timezone.now()
    match = _match_new(total=total, donation=donation)
    _save(donation, ["status", "confirmed_at", "balance_minor", "matched_minor"])
    entry.save()
    if match is not None:
        match.save()
    total_save(total)
    if receipts.receipt_wanted(donation):
        transaction.on_commit(receipts.receipts_schedule)
    return donation


def _confirmed_save(donations: list[Donation]) -> None:
    """Write confirmed donations' status, confirmed_at, balance and match in one statement (Django's
    bulk_update builds a CASE per column: half the matching's time for a statement's batch)."""
    if connection.vendor != "postgresql":
        Donation.objects.bulk_update(donations, ["status", "confirmed_at", "balance_minor", "matched_minor"])
        return
    placeholders = ", ".join(["(%s::bigint, %s, %s::timestamptz, %s::bigint, %s::bigint)"] * len(donations))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Donation._meta.db_table} AS d SET status = v.status, confirmed_at = v.confirmed_at, "  # noqa: S608
            "balance_minor = v.balance_minor, matched_minor = v.matched_minor "
            f"FROM (VALUES {placeholders}) AS v(id, status, confirmed_at, balance_minor, matched_minor) "
            "WHERE d.id = v.id",
            [value for d in donations
             for value in (d.pk, d.status, d.confirmed_at, d.balance_minor, d.matched_minor)],
        )


def donations_confirm(*, total: CampaignTotal, confirmations: list[tuple[Donation, datetime | None]]) -> list[Donation]:
    """Confirm many saved donations of the counter's campaign at once (a bank statement's batch):
    the same result as `donation_confirm` on each in turn, in four statements whatever their
    number (donors' lookup, donations' UPDATE, entries' INSERT, counter's UPDATE). The caller
    holds the counter's lock and the donations' (rows read under their lock). A donation already
    counted, or listed twice, is confirmed once; returns those confirmed now."""
    todo: dict[int, tuple[Donation, datetime | None]] = {}
    for donation, at in confirmations:
        if donation.pk is None or donation.campaign_id != total.campaign_id:
            raise LedgerError(f"donation {donation} is not a saved donation of campaign {total.campaign_id}")
        if donation.status not in COUNTED_STATUSES and donation.pk not in todo:
            todo[donation.pk] = (donation, at)
    if not todo:
        return []
    # Donors counted already (another donation with money in the ledger), read once for the batch;
    # the donations confirmed here join them one by one, as the single path would see them.
    keys = {d.donor_key for d, _at in todo.values() if not d.donor_key.startswith("d:")}
    counted = set(
        Donation.objects.filter(campaign_id=total.campaign_id, donor_key__in=keys, balance_minor__gt=0)
        .exclude(pk__in=todo).values_list("donor_key", flat=True).distinct()
    ) if keys else set()
    counted.update(d.donor_key for d, _at in todo.values() if d.donor_key in keys and d.balance_minor > 0)
    entries = []
    for donation, at in todo.values():
        if donation.status == Donation.Status.PENDING:
            _pending_adjust(total, donation, -1)
        anonymous = donation.donor_key.startswith("d:")
        entries.append(ledger_post(total=total, donation=donation, delta_minor=donation.amount_minor,
                                   kind=LedgerEntry.Kind.CONFIRM,
                                   donor_counted=not anonymous and donation.donor_key in counted))
        if not anonymous and donation.balance_minor > 0:
            counted.add(donation.donor_key)
        donation.status = Donation.Status.CONFIRMED
        donation.confirmed_at = at or timezone.now()
        # In the batch's order, as one confirmation after another would use the cap.
        match = _match_new(total=total, donation=donation)
        if match is not None:
            entries.append(match)
    done = [d for d, _at in todo.values()]
    _confirmed_save(done)
    LedgerEntry.objects.bulk_create(entries)
    total_save(total)
    if any(receipts.receipt_wanted(d) for d in done):
        transaction.on_commit(receipts.receipts_schedule)  # the task sends every receipt due
    return done


def donation_refund(*, total: CampaignTotal, donation: Donation, amount_minor: int | None = None,
                    note: str = "", refund_id: str = "") -> int:
    """Refund all or part of a confirmed donation; returns the amount actually refunded.

    Refunds beyond what is left are capped (providers report them; the ledger never goes
    negative). Refunding an unconfirmed donation is refused. With `refund_id` (the provider's
    identity of the refund) a refund already recorded returns 0 and changes nothing. A matched
    gift's sponsor money goes back in the same proportion (`_match_reverse`), in the same entry's
    transaction: a refund that counts once reverses its match once.
    """
    _require_counted(donation, "refund")
    if refund_id and refund_recorded(donation_id=donation.pk, refund_id=refund_id):
        return 0
    balance = donation.balance_minor
    # A negative correction (a bank fee) already took part of the gift out of the ledger:
    # a refund can only take out what the ledger still holds.
    remaining = min(donation.amount_minor - donation.refunded_minor, balance)
    wanted = remaining if amount_minor is None else amount_minor
    if wanted <= 0:
        raise LedgerError("a refund must be a positive amount")
    applied = min(wanted, remaining)
    if applied <= 0:
        return 0
    entry = ledger_post(total=total, donation=donation, delta_minor=-applied, kind=LedgerEntry.Kind.REFUND, note=note,
                        refund_id=refund_id)
    left_before = donation.amount_minor - donation.refunded_minor
    donation.refunded_minor += applied
    if donation.refunded_minor == donation.amount_minor or applied == balance:
        donation.status = Donation.Status.REFUNDED
    reversal = _match_reverse(total=total, donation=donation, applied=applied, left_before=left_before,
                              note=f"refund {refund_id}" if refund_id else note or "refund")
    donation.save(update_fields=["refunded_minor", "status", "balance_minor", "matched_minor"])
    entry.save()
    if reversal is not None:
        reversal.save()
    total_save(total)
    tax_receipts.tax_receipt_revise(donation=donation, reason=f"refund {refund_id or ''}".strip())
    return applied


def refund_recorded(*, donation_id: int, refund_id: str) -> bool:
    return LedgerEntry.objects.filter(donation_id=donation_id, refund_id=refund_id).exists()


def donation_correct(*, total: CampaignTotal, donation: Donation, delta_minor: int, note: str) -> LedgerEntry:
    """Correct a confirmed donation's money by appending an entry (a typo in a manual entry,
    a bank fee): the amount the donor gave stays as recorded, the ledger says what counts."""
    if not note.strip():
        raise LedgerError("a correction needs a reason")
    _require_counted(donation, "correct")
    entry = ledger_post(total=total, donation=donation, delta_minor=delta_minor, kind=LedgerEntry.Kind.CORRECTION,
                        note=note)
    donation.save(update_fields=["balance_minor"])
    entry.save()
    total_save(total)
    tax_receipts.tax_receipt_revise(donation=donation, reason=f"correction: {note}")
    return entry


def donation_reinstate(*, total: CampaignTotal, donation: Donation, amount_minor: int, note: str) -> int:
    """Give back money a refund-like movement took (a dispute the publication won): the
    refunded amount goes down and the donation counts again. Returns the amount reinstated."""
    _require_counted(donation, "reinstate")
    applied = min(amount_minor, donation.refunded_minor)
    if applied <= 0:
        raise LedgerError(f"donation {donation} has nothing refunded to reinstate")
    entry = ledger_post(total=total, donation=donation, delta_minor=applied, kind=LedgerEntry.Kind.CORRECTION,
                        note=note)
    donation.refunded_minor -= applied
    donation.status = Donation.Status.CONFIRMED
    donation.save(update_fields=["refunded_minor", "status", "balance_minor"])
    entry.save()
    total_save(total)
    tax_receipts.tax_receipt_revise(donation=donation, reason=f"reinstated: {note}")
    return applied


def donation_fail(*, total: CampaignTotal, donation: Donation, status: str = Donation.Status.FAILED) -> Donation:
    """A pending pledge fails or expires: it counts nowhere. Confirmed money is untouched."""
    if status not in (Donation.Status.FAILED, Donation.Status.EXPIRED):
        raise LedgerError(f"cannot fail a donation into {status}")
    if donation.status != Donation.Status.PENDING:
        return donation
    if donation.pk is not None:
        _pending_adjust(total, donation, -1)
    donation.status = status
    _save(donation, ["status"])
    total_save(total)
    return donation


# --- Entry points that open their own transaction ----------------------------------------------


def donation_create(*, campaign: Campaign, source: str, external_id: str, amount_minor: int, currency: str,
                    **fields) -> tuple[Donation, bool]:
    """Create a pending donation once per (source, external_id); return (donation, created)."""
    donation = donation_new(campaign=campaign, source=source, external_id=external_id, amount_minor=amount_minor,
                            currency=currency, **fields)
    with transaction.atomic():
        total = total_lock(campaign_id=campaign.pk)
        existing = Donation.objects.filter(source=source, external_id=external_id).first()
        if existing is not None:
            return existing, False
        return donation_add(total=total, donation=donation), True


def donation_record(*, campaign: Campaign, source: str, external_id: str, amount_minor: int,
                    at: datetime | None = None, **fields) -> tuple[Donation, bool]:
    """Record money already received (manual entry, demo seed): confirmed at once, once per
    (source, external_id) — a pending donation of that key is confirmed."""
    currency = fields.pop("currency", campaign.currency)
    with transaction.atomic():
        total = total_lock(campaign_id=campaign.pk)
        donation = Donation.objects.select_for_update().filter(source=source, external_id=external_id).first()
        created = donation is None
        if created:
            donation = donation_new(campaign=campaign, source=source, external_id=external_id,
                                    amount_minor=amount_minor, currency=currency, **fields)
        donation_confirm(total=total, donation=donation, at=at)
    return donation, created
