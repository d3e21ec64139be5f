"""Money moves: the Donation state machine, the append-only ledger and the CampaignTotal counter.

Every function here runs in one transaction and takes the campaign's CampaignTotal row lock
first, then the donation's: writers of one campaign queue on that lock, so concurrent workers
never lose an update, and the fixed lock order (event → total → donation) rules out deadlocks.

Counting rules (the reconcile service recomputes them the same way from the ledger):
- total_minor = Σ ledger deltas;
- donation_count = donations whose Σ ledger deltas is > 0;
- donor_count = distinct donor keys among those donations;
- pending_minor = amount of pending pledges that promise money (bank transfers) and that their
  donor confirmed (pledge_confirmed_at); the public figure caps it per campaign (selectors).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import uuid
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignTotal, Donation, LedgerEntry

# Pledges from these sources are promised money shown as "pending" until they are matched.
PENDING_SOURCES = frozenset({Donation.Source.BANK})


class LedgerError(Exception):
    """A money change that the state machine refuses (the message says why)."""


def donor_key_for(*, email: str) -> str:
    """One donor per e-mail address (keyed hash, so the key itself is no personal data)."""
    if email:
        digest = hmac.new(settings.DONOR_KEY_SECRET.encode(), email.strip().lower().encode(), hashlib.sha256)
        return "e:" + digest.hexdigest()[:40]
    return "d:" + uuid.uuid4().hex


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


def _lock_donation(donation_id: int) -> tuple[CampaignTotal, Donation]:
    """Lock a donation's campaign counter, then the donation: the one lock order (see above)."""
    campaign_id = Donation.objects.values_list("campaign_id", flat=True).get(pk=donation_id)
    total = total_lock(campaign_id=campaign_id)
    return total, Donation.objects.select_for_update().get(pk=donation_id)


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


def total_touch(total: CampaignTotal) -> None:
    total.version += 1
    total.updated_at = timezone.now()
    total.save()
    campaign_id = total.campaign_id
    _on_commit_once(("progress", campaign_id), lambda: progress_changed(campaign_id=campaign_id, total=total))


def _on_commit_once(key: tuple, func) -> None:
    """Run `func` after commit, skipping it when a callback of the same key already ran after this
    one was registered: a batch (demo seed, statement import) publishes its campaign's progress
    once, after its last entry, instead of once per entry. Rolled-back callbacks never run, so
    they can never hide a later one; the bookkeeping is per connection, hence per thread."""
    connection = transaction.get_connection()
    registered = next(_on_commit_sequence)

    def run() -> None:
        ran = connection.__dict__.setdefault("_jauge_on_commit_ran", {})
        if ran.get(key, 0) > registered:
            return
        ran[key] = next(_on_commit_sequence)
        func()

    transaction.on_commit(run)


_on_commit_sequence = itertools.count(1)


def ledger_post(
    *,
    total: CampaignTotal,
    donation: Donation,
    delta_minor: int,
    kind: str,
    note: str = "",
    net_before: int | None = None,
    refund_id: str = "",
) -> LedgerEntry:
    """Append one entry and move the locked counter and the donation's balance with it. Caller
    holds both locks.

    `net_before`: the balance before this entry when the caller already moved
    `donation.balance_minor` in memory to save it with its own update (one UPDATE, not two).
    """
    if delta_minor == 0:
        raise LedgerError("a ledger entry cannot be zero")
    if net_before is None:
        net_before = donation.balance_minor
    net_after = net_before + delta_minor
    if net_after < 0:
        raise LedgerError(f"donation {donation.pk} would go below zero ({net_after})")
    if donation.balance_minor != net_after:
        donation.balance_minor = net_after
        donation.save(update_fields=["balance_minor"])
    entry = LedgerEntry.objects.create(
        campaign_id=donation.campaign_id, donation=donation, delta_minor=delta_minor, kind=kind, note=note,
        refund_id=refund_id,
    )
    total.total_minor += delta_minor
    if net_before <= 0 < net_after:
        total.donation_count += 1
        if not _other_counted_donation_of_donor(donation):
            total.donor_count += 1
    elif net_after <= 0 < net_before:
        total.donation_count -= 1
        if not _other_counted_donation_of_donor(donation):
            total.donor_count -= 1
    total_touch(total)
    return entry


def _pending_adjust(total: CampaignTotal, donation: Donation, sign: int) -> None:
    # Only a promise its donor confirmed is pending money (services/pledge_verification.py).
    if donation.source in PENDING_SOURCES and donation.pledge_confirmed_at is not None:
        total.pending_minor = max(0, total.pending_minor + sign * donation.amount_minor)


def donation_create(
    *,
    campaign: Campaign,
    source: str,
    external_id: str,
    amount_minor: int,
    currency: str,
    donor_name: str = "",
    donor_email: str = "",
    anonymous: bool = False,
    message: str = "",
    article_url: str = "",
    locale: str = "",
    frequency: str = Donation.Frequency.ONCE,
    reference: str | None = None,
    occurred_at: datetime | None = None,
) -> tuple[Donation, bool]:
    """Create a pending donation once per (source, external_id); return (donation, created)."""
    if currency != campaign.currency:
        raise LedgerError(f"currency {currency} does not match the campaign's {campaign.currency}")
    with transaction.atomic():
        total = total_lock(campaign_id=campaign.pk)
        existing = Donation.objects.filter(source=source, external_id=external_id).first()
        if existing is not None:
            return existing, False
        donation = donation_insert_locked(
            total=total,
            campaign=campaign,
            source=source,
            external_id=external_id,
            amount_minor=amount_minor,
            currency=currency,
            donor_name=donor_name,
            donor_email=donor_email,
            anonymous=anonymous,
            message=message,
            article_url=article_url,
            locale=locale,
            frequency=frequency,
            reference=reference,
            occurred_at=occurred_at,
        )
        if donation.source in PENDING_SOURCES:
            total_touch(total)
    return donation, True


def donation_insert_locked(*, total: CampaignTotal, campaign: Campaign, donor_email: str = "", **fields) -> Donation:
    """Insert a pending donation. The caller holds `total`'s lock and has checked the idempotency
    key; pending money is added to the counter object, saved by the caller's next touch."""
    donation = Donation.objects.create(
        campaign=campaign, donor_email=donor_email, donor_key=donor_key_for(email=donor_email), **fields
    )
    if donation.source in PENDING_SOURCES:
        _pending_adjust(total, donation, +1)
    return donation


def donation_insert_confirmed_locked(
    *, total: CampaignTotal, campaign: Campaign, amount_minor: int, at: datetime, donor_email: str = "", **fields
) -> Donation:
    """Insert a donation that is confirmed on arrival (a provider's success for an unknown
    donation) and post its money: one INSERT instead of insert-then-confirm, since the caller holds
    the campaign's lock and every statement saved shortens the wait of the campaign's next event."""
    donation = Donation.objects.create(
        campaign=campaign,
        amount_minor=amount_minor,
        balance_minor=amount_minor,
        donor_email=donor_email,
        donor_key=donor_key_for(email=donor_email),
        status=Donation.Status.CONFIRMED,
        confirmed_at=at,
        **fields,
    )
    ledger_post(total=total, donation=donation, delta_minor=amount_minor, kind=LedgerEntry.Kind.CONFIRM, net_before=0)
    _receipt_on_commit(donation)
    return donation


def donation_confirm(*, donation_id: int, at: datetime | None = None) -> Donation:
    """Confirm once: the amount enters the ledger. Retries and duplicates are no-ops."""
    with transaction.atomic():
        total, donation = _lock_donation(donation_id)
        return donation_confirm_locked(total=total, donation=donation, at=at)


def donation_confirm_locked(*, total: CampaignTotal, donation: Donation, at: datetime | None = None) -> Donation:
    """donation_confirm's work, for a caller holding both locks."""
    if donation.status in (Donation.Status.CONFIRMED, Donation.Status.REFUNDED):
        return donation
    if donation.status == Donation.Status.PENDING:
        _pending_adjust(total, donation, -1)
    # A failed or expired payment can still succeed later (a provider retry): money is money.
    net_before = donation.balance_minor
    donation.status = Donation.Status.CONFIRMED
    donation.confirmed_at = at or timezone.now()
    donation.balance_minor = net_before + donation.amount_minor
    donation.save(update_fields=["status", "confirmed_at", "balance_minor"])
    ledger_post(
        total=total,
        donation=donation,
        delta_minor=donation.amount_minor,
        kind=LedgerEntry.Kind.CONFIRM,
        net_before=net_before,
    )
    _receipt_on_commit(donation)
    return donation


def _receipt_on_commit(donation: Donation) -> None:
    """Every confirmation path (webhooks, statement matching) ends here: the receipt follows."""
    from campaigns.services.receipts import receipt_wanted, receipts_schedule

    if receipt_wanted(donation):
        _on_commit_once(("receipts",), receipts_schedule)


def donation_refund(
    *, donation_id: int, amount_minor: int | None = None, note: str = "", refund_id: str = ""
) -> int:
    """Refund all or part of a confirmed donation; returns the amount actually refunded.

    Refunds beyond what is left are capped (providers report them; the ledger never goes
    negative). Refunding an unconfirmed donation is refused. With `refund_id` (the provider's
    identity of the refund) a refund already recorded returns 0 and changes nothing.
    """
    with transaction.atomic():
        total, donation = _lock_donation(donation_id)
        if donation.status not in (Donation.Status.CONFIRMED, Donation.Status.REFUNDED):
            raise LedgerError(f"donation {donation} is {donation.status}, not confirmed: nothing to refund")
        if refund_id and refund_recorded(donation_id=donation.pk, refund_id=refund_id):
            return 0
        net = donation.balance_minor
        # A negative correction (a bank fee) already took part of the gift out of the ledger:
        # a refund can only take out what the ledger still holds.
        remaining = min(donation.amount_minor - donation.refunded_minor, net)
        wanted = remaining if amount_minor is None else amount_minor
        if wanted <= 0:
            raise LedgerError("a refund must be a positive amount")
        applied = min(wanted, remaining)
        if applied <= 0:
            return 0
        donation.refunded_minor += applied
        if donation.refunded_minor == donation.amount_minor or applied == net:
            donation.status = Donation.Status.REFUNDED
        donation.balance_minor = net - applied
        donation.save(update_fields=["refunded_minor", "status", "balance_minor"])
        ledger_post(
            total=total,
            donation=donation,
            delta_minor=-applied,
            kind=LedgerEntry.Kind.REFUND,
            note=note,
            net_before=net,
            refund_id=refund_id,
        )
    return applied


def refund_recorded(*, donation_id: int, refund_id: str) -> bool:
    return LedgerEntry.objects.filter(donation_id=donation_id, refund_id=refund_id).exists()


def donation_fail(*, donation_id: int, status: str = Donation.Status.FAILED) -> Donation:
    """A pending pledge fails or expires: it counts nowhere. Confirmed money is untouched."""
    if status not in (Donation.Status.FAILED, Donation.Status.EXPIRED):
        raise LedgerError(f"cannot fail a donation into {status}")
    with transaction.atomic():
        total, donation = _lock_donation(donation_id)
        if donation.status != Donation.Status.PENDING:
            return donation
        _pending_adjust(total, donation, -1)
        donation.status = status
        donation.save(update_fields=["status"])
        total_touch(total)
    return donation


def donation_record(
    *, campaign: Campaign, source: str, external_id: str, amount_minor: int, at: datetime | None = None, **fields
) -> tuple[Donation, bool]:
    """Record money already received (manual entry, demo seed): create and confirm at once."""
    with transaction.atomic():
        donation, created = donation_create(
            campaign=campaign,
            source=source,
            external_id=external_id,
            amount_minor=amount_minor,
            currency=fields.pop("currency", campaign.currency),
            **fields,
        )
        donation = donation_confirm(donation_id=donation.pk, at=at)
    return donation, created


def progress_changed(*, campaign_id: int, total: CampaignTotal | None = None) -> None:
    """After commit: refresh the cached progress snapshot and tell live listeners."""
    from campaigns.services.progress import progress_publish

    progress_publish(campaign_id=campaign_id, total=total)


def donation_correct(*, donation_id: int, delta_minor: int, note: str) -> LedgerEntry:
    """Correct a confirmed donation's money by appending an entry (a typo in a manual entry,
    a bank fee): the amount the donor gave stays as recorded, the ledger says what counts."""
    if not note.strip():
        raise LedgerError("a correction needs a reason")
    with transaction.atomic():
        total, donation = _lock_donation(donation_id)
        if donation.status not in (Donation.Status.CONFIRMED, Donation.Status.REFUNDED):
            raise LedgerError(f"donation {donation} is {donation.status}, not confirmed: nothing to correct")
        return ledger_post(
            total=total, donation=donation, delta_minor=delta_minor, kind=LedgerEntry.Kind.CORRECTION, note=note
        )


def donation_reinstate(*, donation_id: int, amount_minor: int, note: str) -> int:
    """Give back money a refund-like movement took (a dispute the publication won): the
    refunded amount goes down and the donation counts again. Returns the amount reinstated."""
    with transaction.atomic():
        total, donation = _lock_donation(donation_id)
        if donation.status not in (Donation.Status.CONFIRMED, Donation.Status.REFUNDED):
            raise LedgerError(f"donation {donation} is {donation.status}, not confirmed: nothing to reinstate")
        applied = min(amount_minor, donation.refunded_minor)
        if applied <= 0:
            raise LedgerError(f"donation {donation} has nothing refunded to reinstate")
        net_before = donation.balance_minor
        donation.refunded_minor -= applied
        donation.status = Donation.Status.CONFIRMED
        donation.balance_minor = net_before + applied
        donation.save(update_fields=["refunded_minor", "status", "balance_minor"])
        ledger_post(
            total=total,
            donation=donation,
            delta_minor=applied,
            kind=LedgerEntry.Kind.CORRECTION,
            note=note,
            net_before=net_before,
        )
    return applied
