"""French tax receipts: issue (one-off gift, yearly summary of monthly gifts), cancel and correct,
the bulk yearly run, and the donor's signed link.

Numbers: one gapless sequence per year. A number is taken under the row lock of the year's
`TaxReceiptSequence`, in the transaction that inserts the receipt: a rollback gives the number
back with everything else, two issuers queue on the row, so the numbers of a year are exactly
1..N. Lock order, everywhere: the campaign's counter (money path) → the donations → the year's
sequence row; the bulk run takes no counter, so no cycle is possible.

Which year: the gift's (its provider date, else its confirmation), in TIME_ZONE. A one-off gift
gets its own receipt (sent with the receipt e-mail, or from the admin, or by the yearly run);
monthly gifts get one receipt per donor and year, from the yearly run.

A receipt never changes: a refund or correction of money it covers (the ledger calls
`tax_receipt_revise` in its transaction) cancels it and, while money remains, issues a corrected
receipt under a new number that names the one it replaces.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import Case, Exists, IntegerField, Max, OuterRef, Q, QuerySet, Sum, When
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from campaigns import queue
from campaigns.models import (
    Donation,
    TaxReceipt,
    TaxReceiptDelivery,
    TaxReceiptLine,
    TaxReceiptRun,
    TaxReceiptSequence,
)
from campaigns.models import TaxReceiptSettings as OrgSettings
from campaigns.selectors.tax_receipts import CURRENCY
from campaigns.services import donor_links

logger = logging.getLogger(__name__)

# A step of the bulk run stops after this long and sends the next step: short tasks, and a
# killed worker loses one batch's transaction at most (the next step picks up what is missing).
STEP_SECONDS = 20
_SALT = "jauge.tax-receipt"
COUNTED = (Donation.Status.CONFIRMED, Donation.Status.REFUNDED)


class TaxReceiptError(Exception):
    """A receipt that cannot be issued (the message says why); nothing was issued."""


class TaxReceiptLinkError(Exception):
    """A donor's link that opens nothing: `reason` is `invalid` (tampered) or `expired`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- Snapshots --------------------------------------------------------------------------------


def _org() -> OrgSettings:
    org = OrgSettings.current()
    if not org.enabled:
        raise TaxReceiptError("tax receipts are not enabled (admin: réglages des reçus fiscaux)")
    return org


def issuer_snapshot(org: OrgSettings) -> dict:
    """What the receipt says about the organisation, frozen at issue."""
    return {
        "legal_name": org.legal_name, "address": org.address, "siren": org.siren, "purpose": org.purpose,
        "organisation_type": org.organisation_type, "legal_basis": org.legal_basis,
        "rate_percent": org.reduction_rate_percent, "signatory": org.signatory,
    }


def payment_method(donation: Donation) -> str:
    """CERFA's *mode de versement*: card, transfer, cheque, cash (a manual entry says which)."""
    if donation.source == Donation.Source.MANUAL:
        method = donation.external_id.split(":", 1)[0]
        return method if method in ("cheque", "cash", "transfer") else "other"
    if donation.source == Donation.Source.BANK:
        return "transfer"
    return "card"


def donor_address(donation: Donation) -> str:
    lines = [donation.donor_address.strip(), f"{donation.donor_postal_code.strip()} {donation.donor_city.strip()}"]
    return "\n".join(line.strip() for line in lines if line.strip())


def gift_at(donation: Donation) -> datetime:
    """The gift's date: its provider's, else its confirmation (`gift_at` when a query annotated it)."""
    at = getattr(donation, "gift_at", None) or donation.occurred_at or donation.confirmed_at or donation.created_at
    return timezone.localtime(at)


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)


def _number(year: int, sequence: int) -> str:
    return f"{year}-{sequence:06d}"


def _allocate(*, year: int, count: int) -> int:
    """Take `count` consecutive numbers of `year` under its row lock; returns the first.
    Call inside the transaction that inserts the receipts (after locking their donations)."""
    TaxReceiptSequence.objects.bulk_create([TaxReceiptSequence(year=year)], ignore_conflicts=True)
    sequence = TaxReceiptSequence.objects.select_for_update().get(year=year)
    first = sequence.last_number + 1
    sequence.last_number += count
    sequence.save(update_fields=["last_number"])
    return first


# --- One-off gifts ------------------------------------------------------------------------------


def _gift_check(donation: Donation) -> None:
    if donation.status not in COUNTED or donation.balance_minor <= 0:
        raise TaxReceiptError(f"donation {donation} is {donation.status}, not confirmed money: "
                              "no tax receipt issued")
    if donation.frequency != Donation.Frequency.ONCE:
        raise TaxReceiptError(f"donation {donation} is a monthly gift: it is covered by the donor's yearly receipt")
    if donation.currency != CURRENCY:
        raise TaxReceiptError(f"donation {donation} is in {donation.currency}: tax receipts are in euros")
    if donation.source == Donation.Source.DEMO:
        raise TaxReceiptError(f"donation {donation} is demo data")
    if not donation.donor_name.strip() or not donor_address(donation):
        raise TaxReceiptError(f"donation {donation} has no donor name and postal address: a receipt needs both")


def tax_receipt_issue_for_gift(*, donation_id: int) -> TaxReceipt:
    """The receipt of a confirmed one-off gift; the one in force if it exists (idempotent).
    Refused with TaxReceiptError (nothing issued, no number taken) otherwise."""
    with transaction.atomic():
        donation = Donation.objects.select_for_update().get(pk=donation_id)
        existing = TaxReceipt.objects.active().filter(kind=TaxReceipt.Kind.GIFT, donation=donation).first()
        if existing is not None:
            return existing
        _gift_check(donation)
        org = _org()
        receipts = _gift_receipts_insert([donation], org=org, run=None)
    return receipts[0]


def _gift_receipts_insert(donations: list, *, org: OrgSettings, run: TaxReceiptRun | None
                          ) -> list[TaxReceipt]:
    """Insert the receipts of locked, checked one-off gifts (grouped by year: one lock each)."""
    by_year: dict[int, list] = {}
    for donation in donations:
        by_year.setdefault(gift_at(donation).year, []).append(donation)
    issuer, now, receipts = issuer_snapshot(org), timezone.now(), []
    for year, gifts in sorted(by_year.items()):
        first = _allocate(year=year, count=len(gifts))
        receipts += [
            TaxReceipt(number=_number(year, first + i), year=year, sequence=first + i, kind=TaxReceipt.Kind.GIFT,
                       donation_id=d.pk, donor_key=d.donor_key, amount_minor=d.balance_minor, currency=CURRENCY,
                       gift_date=gift_at(d).date(), payment_method=payment_method(d), donor_name=d.donor_name,
                       donor_address=donor_address(d), issuer=issuer, issued_at=now, run=run)
            for i, d in enumerate(gifts)
        ]
    TaxReceipt.objects.bulk_create(receipts)
    _lines_insert([(r.pk, r.donation_id, r.amount_minor) for r in receipts])
    return receipts


def tax_receipt_issue_quietly(*, donation: Donation, enabled: bool | None = None) -> TaxReceipt | None:
    """For the receipt e-mail: the gift's receipt when it can have one, else None (never raises
    for a gift that cannot: monthly, no address, receipts off). `enabled`: the settings as the
    caller already read them (the receipts batch reads them once)."""
    if enabled is None:
        enabled = OrgSettings.current().enabled
    if donation.frequency != Donation.Frequency.ONCE or not enabled:
        return None
    if not donation.donor_name.strip() or not donor_address(donation):
        # Most providers' gifts carry no postal address: refused without locking the gift (a
        # receipt e-mail goes to a gift that was not erased, whose address does not come back).
        return None
    try:
        return tax_receipt_issue_for_gift(donation_id=donation.pk)
    except TaxReceiptError as exc:
        logger.info("no tax receipt for %s: %s", donation, exc)
        return None


# --- Yearly summaries of monthly gifts ------------------------------------------------------------


def _counted_in_year(year: int) -> QuerySet[Donation]:
    start, end = _year_bounds(year)
    return (Donation.objects.annotate(gift_at=Coalesce("occurred_at", "confirmed_at"))
            .filter(status__in=COUNTED, balance_minor__gt=0, currency=CURRENCY, gift_at__gte=start, gift_at__lt=end)
            .exclude(source=Donation.Source.DEMO))


def _has_address() -> Q:
    return ~Q(donor_name="") & ~Q(donor_address="") & ~Q(donor_city="")


def _gifts_to_receipt(year: int) -> QuerySet[Donation]:
    active = TaxReceipt.objects.filter(donation=OuterRef("pk"), kind=TaxReceipt.Kind.GIFT, cancelled_at__isnull=True)
    return _counted_in_year(year).filter(frequency=Donation.Frequency.ONCE).exclude(Exists(active))


def _donors_to_receipt(year: int) -> QuerySet:
    """Monthly donors of `year` (by donor key) without a yearly receipt in force, with an address."""
    active = TaxReceipt.objects.filter(donor_key=OuterRef("donor_key"), year=year, kind=TaxReceipt.Kind.YEARLY,
                                       cancelled_at__isnull=True)
    return (_counted_in_year(year).filter(frequency=Donation.Frequency.MONTHLY).exclude(Exists(active))
            .values("donor_key")
            .annotate(addressed=Max(Case(When(_has_address(), then=1), default=0, output_field=IntegerField()))))


# What a receipt reads from a gift: the yearly run loads these columns alone (a 50,000-donor run
# reads 600,000 instalments; full model instances cost more than the rest of the run).
GIFT_FIELDS = ("pk", "donor_key", "donor_name", "donor_address", "donor_postal_code", "donor_city", "balance_minor",
               "gift_at", "source", "external_id", "status")


def _locked_gifts(gifts: QuerySet[Donation]) -> list[SimpleNamespace]:
    """Lock these donations (in id order, as every path does) and read what receipts need."""
    rows = gifts.select_for_update(of=("self",)).filter(balance_minor__gt=0).order_by("pk")
    if "gift_at" not in rows.query.annotations:
        rows = rows.annotate(gift_at=Coalesce("occurred_at", "confirmed_at", "created_at"))
    return [SimpleNamespace(**row) for row in rows.values(*GIFT_FIELDS)]


def _lines_insert(lines: list[tuple[int, int, int]]) -> None:
    """(receipt id, donation id, amount) rows; one statement on PostgreSQL."""
    if connection.vendor != "postgresql":
        TaxReceiptLine.objects.bulk_create([TaxReceiptLine(receipt_id=r, donation_id=d, amount_minor=a)
                                            for r, d, a in lines], batch_size=2000)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TaxReceiptLine._meta.db_table} (receipt_id, donation_id, amount_minor) "  # noqa: S608
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[])",
            [[r for r, _d, _a in lines], [d for _r, d, _a in lines], [a for _r, _d, a in lines]],
        )


def _yearly_receipts_insert(donors: dict[str, list], *, year: int, org: OrgSettings,
                            run: TaxReceiptRun | None) -> list[TaxReceipt]:
    first = _allocate(year=year, count=len(donors))
    issuer, now, receipts = issuer_snapshot(org), timezone.now(), []
    for i, (key, gifts) in enumerate(sorted(donors.items())):
        gifts.sort(key=lambda d: (gift_at(d), d.pk))
        named = [d for d in gifts if d.donor_name.strip() and donor_address(d)][-1]  # the latest address
        receipt = TaxReceipt(
            number=_number(year, first + i), year=year, sequence=first + i, kind=TaxReceipt.Kind.YEARLY,
            donor_key=key, amount_minor=sum(d.balance_minor for d in gifts), currency=CURRENCY,
            gift_date=gift_at(gifts[-1]).date(), payment_method=payment_method(gifts[-1]),
            donor_name=named.donor_name, donor_address=donor_address(named), issuer=issuer, issued_at=now, run=run)
        receipts.append(receipt)
    TaxReceipt.objects.bulk_create(receipts)
    _lines_insert([(receipt.pk, d.pk, d.balance_minor) for receipt, (_key, gifts) in
                   zip(receipts, sorted(donors.items()), strict=True) for d in gifts])
    return receipts


# --- Refunds and corrections ----------------------------------------------------------------------


def tax_receipt_revise(*, donation: Donation, reason: str) -> TaxReceipt | None:
    """The ledger moved a donation's money (refund, correction, reinstatement); the caller holds
    its lock. The receipt in force that covers it no longer says the truth: cancel it and issue
    the corrected one (new number) if money remains. Returns the new receipt, if any."""
    line = (TaxReceiptLine.objects.filter(donation_id=donation.pk, receipt__cancelled_at__isnull=True)
            .select_related("receipt").first())
    if line is None or line.amount_minor == donation.balance_minor:
        return None
    old = line.receipt
    lines = [(other.donation_id, other.amount_minor) for other in old.lines.exclude(pk=line.pk)]
    if donation.balance_minor > 0:
        lines.append((donation.pk, donation.balance_minor))
    TaxReceipt.objects.filter(pk=old.pk).cancel(at=timezone.now(), reason=reason)
    amount = sum(amount for _pk, amount in lines)
    if amount <= 0:
        return None  # nothing left to certify (a full refund): cancelled, not replaced
    first = _allocate(year=old.year, count=1)  # in the caller's transaction, with the cancellation
    receipt = TaxReceipt.objects.create(
        number=_number(old.year, first), year=old.year, sequence=first, kind=old.kind, donation=old.donation,
        donor_key=old.donor_key, amount_minor=amount, currency=old.currency, gift_date=old.gift_date,
        payment_method=old.payment_method, donor_name=old.donor_name, donor_address=old.donor_address,
        issuer=old.issuer, replaces=old)
    TaxReceiptLine.objects.bulk_create(
        [TaxReceiptLine(receipt=receipt, donation_id=pk, amount_minor=amount) for pk, amount in lines])
    logger.info("tax receipt %s cancelled (%s), replaced by %s", old.number, reason, receipt.number)
    queue.send("send_tax_receipt_emails")  # after the commit: the donor gets the corrected receipt
    return receipt


def tax_receipt_cancel(*, receipt_id: int, reason: str) -> TaxReceipt | None:
    """Finance cancels a receipt issued in error (a wrong name): the gift can then be receipted
    again (new number). Returns None when it was already cancelled."""
    if not reason.strip():
        raise TaxReceiptError("a cancellation needs a reason")
    with transaction.atomic():
        receipt = TaxReceipt.objects.select_for_update().get(pk=receipt_id)
        if not TaxReceipt.objects.filter(pk=receipt.pk).cancel(at=timezone.now(), reason=reason):
            return None
    receipt.refresh_from_db()
    return receipt


# --- The bulk yearly run ----------------------------------------------------------------------------


@dataclass
class RunCounts:
    to_do: int
    skipped: int


def _run_counts(year: int) -> RunCounts:
    gifts = _gifts_to_receipt(year)
    donors = _donors_to_receipt(year)
    return RunCounts(
        to_do=gifts.filter(_has_address()).count() + donors.filter(addressed=1).count(),
        skipped=gifts.exclude(_has_address()).count() + donors.filter(addressed=0).count(),
    )


def tax_receipt_run_start(*, year: int, started_by: str = "") -> TaxReceiptRun:
    """Start (or return the running) bulk run of `year`; its first step is sent after the commit."""
    if not 2000 <= year <= timezone.localdate().year:
        raise TaxReceiptError(f"year {year} is not a past or current year")
    _org()
    with transaction.atomic():
        running = TaxReceiptRun.objects.select_for_update().filter(year=year, status=TaxReceiptRun.Status.RUNNING)
        run = running.first()
        if run is None:
            counts = _run_counts(year)
            run = TaxReceiptRun.objects.create(year=year, to_do=counts.to_do, skipped=counts.skipped,
                                               started_by=started_by)
        queue.send("tax_receipts_run_step", run.pk)
    return run


def tax_receipt_run_step(*, run_id: int, seconds: float = STEP_SECONDS, batch_size: int | None = None) -> bool:
    """Issue batches for this run for about `seconds`; True when the run is done. Safe to run
    twice at once (the second finds the run row locked and leaves) and after a crash (it issues
    only what is still missing)."""
    deadline = timezone.now() + timedelta(seconds=seconds)
    batch_size = batch_size or settings.TAX_RECEIPTS_BATCH
    while timezone.now() < deadline:
        with transaction.atomic():
            run = TaxReceiptRun.objects.select_for_update(skip_locked=True).filter(pk=run_id).first()
            if run is None or run.status == TaxReceiptRun.Status.DONE:
                return run is not None
            issued, found = _run_batch(run, batch_size)
            run.issued += issued
            run.stepped_at = timezone.now()
            if not found:
                run.status, run.finished_at = TaxReceiptRun.Status.DONE, run.stepped_at
            run.save(update_fields=["issued", "stepped_at", "status", "finished_at"])
        if not found:
            logger.info("tax receipts %s: run done, %d issued", run.year, run.issued)
            queue.send("send_tax_receipt_emails")
            return True
    queue.send("tax_receipts_run_step", run_id)
    return False


def _run_batch(run: TaxReceiptRun, batch_size: int) -> tuple[int, bool]:
    """(receipts issued, whether anything was left to look at)."""
    org = OrgSettings.current()
    if not org.enabled:
        raise TaxReceiptError("tax receipts were disabled during the run")
    # One-off gifts the e-mails did not receipt (manual entries, no address then…).
    gift_ids = list(_gifts_to_receipt(run.year).filter(_has_address()).order_by("pk")
                    .values_list("pk", flat=True)[:batch_size])
    if gift_ids:
        # As they are now, under their lock (a refund may have come in between).
        gifts = [d for d in _locked_gifts(Donation.objects.filter(pk__in=gift_ids)) if d.status in COUNTED]
        return len(_gift_receipts_insert(gifts, org=org, run=run)), True
    keys = list(_donors_to_receipt(run.year).filter(addressed=1).order_by("donor_key")
                .values_list("donor_key", flat=True)[:batch_size])
    if not keys:
        return 0, False
    donors: dict[str, list] = {}
    for donation in _locked_gifts(_counted_in_year(run.year).filter(frequency=Donation.Frequency.MONTHLY,
                                                                    donor_key__in=keys)):
        donors.setdefault(donation.donor_key, []).append(donation)
    donors = {key: gifts for key, gifts in donors.items() if any(d.donor_name.strip() and donor_address(d)
                                                                 for d in gifts)}
    return len(_yearly_receipts_insert(donors, year=run.year, org=org, run=run)) if donors else 0, True


def tax_receipt_runs_sweep(*, older_than_seconds: int) -> list[int]:
    """Runs still running with no batch for this long (the broker lost their next step, or its
    worker was killed): send their step again. A step is safe to run twice, so a run whose step
    only waited in a queue loses nothing; one a worker is going through moves every batch."""
    cutoff = timezone.now() - timedelta(seconds=max(older_than_seconds, 2 * STEP_SECONDS))
    ids = list(TaxReceiptRun.objects.filter(status=TaxReceiptRun.Status.RUNNING, started_at__lt=cutoff)
               .filter(Q(stepped_at__isnull=True) | Q(stepped_at__lt=cutoff)).order_by("pk")
               .values_list("pk", flat=True))
    for run_id in ids:
        queue.send("tax_receipts_run_step", run_id)
    if ids:
        logger.info("sweeper re-sent the step of %d tax receipt runs", len(ids))
    return ids


def run_progress(*, run_id: int) -> dict:
    run = TaxReceiptRun.objects.get(pk=run_id)
    return {"run": run, "done": run.issued, "to_do": run.to_do, "skipped": run.skipped, "percent": run.percent,
            "amount_minor": TaxReceipt.objects.filter(run=run).aggregate(s=Sum("amount_minor"))["s"] or 0}


# --- The donor's link ----------------------------------------------------------------------------


def tax_receipt_token(*, receipt: TaxReceipt) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(receipt.number)


def tax_receipt_url(*, receipt: TaxReceipt, lang: str = "") -> str:
    """The donor's link; `lang` (theirs) is the language of the page it opens when it opens no PDF
    (cancelled, expired, tampered): the token alone cannot say it once it is refused."""
    url = settings.PUBLIC_URL + reverse("tax-receipt", kwargs={"token": tax_receipt_token(receipt=receipt)})
    return f"{url}?lang={lang[:2]}" if lang else url


def tax_receipt_from_token(*, token: str) -> TaxReceipt:
    try:
        number = signing.TimestampSigner(salt=_SALT).unsign(
            token, max_age=timedelta(days=settings.TAX_RECEIPT_LINK_DAYS))
    except signing.SignatureExpired:
        raise TaxReceiptLinkError("expired") from None
    except signing.BadSignature:
        raise TaxReceiptLinkError("invalid") from None
    receipt = TaxReceipt.objects.filter(number=number).first()
    if receipt is None:
        raise TaxReceiptLinkError("invalid")
    return receipt


def receipt_in_force(receipt: TaxReceipt) -> TaxReceipt | None:
    """The receipt that replaced this cancelled one, down the chain (None: none in force)."""
    while receipt.cancelled_at is not None:
        receipt = TaxReceipt.objects.filter(replaces=receipt).first()
        if receipt is None:
            return None
    return receipt



# --- E-mailing receipts on their own (yearly summaries, corrected receipts) ------------------------
# A one-off gift's first receipt is linked from its receipt e-mail (services/receipts.py).

EMAIL_BATCH = 100


def _undelivered() -> QuerySet[TaxReceipt]:
    delivered = TaxReceiptDelivery.objects.filter(receipt=OuterRef("pk"))
    return (TaxReceipt.objects.active().filter(Q(kind=TaxReceipt.Kind.YEARLY) | Q(replaces__isnull=False))
            .exclude(Exists(delivered)))


def tax_receipt_emails_send(*, batch_size: int = EMAIL_BATCH) -> int:
    """E-mail every yearly summary and corrected receipt not e-mailed yet, once each (a claim row
    per receipt, taken with SKIP LOCKED), over one mail connection per batch. Returns how many."""
    sent = 0
    while True:
        with transaction.atomic():
            ids = list(_undelivered().select_for_update(skip_locked=True).order_by("pk")
                       .values_list("pk", flat=True)[:batch_size])
            TaxReceiptDelivery.objects.bulk_create([TaxReceiptDelivery(receipt_id=pk) for pk in ids])
        if not ids:
            return sent
        sent += _deliver(ids)


def _deliver(ids: list[int]) -> int:
    sent, done = 0, set()
    try:
        with get_connection() as connection_:
            for receipt in TaxReceipt.objects.filter(pk__in=ids).select_related("replaces").order_by("pk"):
                error = _deliver_one(connection_, receipt)
                done.add(receipt.pk)
                if error:
                    TaxReceiptDelivery.objects.filter(receipt=receipt).update(error=error[:300])
                else:
                    sent += 1
    except Exception:
        # The connection failed: release the claims of what was not sent, for the retry.
        TaxReceiptDelivery.objects.filter(receipt_id__in=set(ids) - done).delete()
        raise
    return sent


def _deliver_one(connection_, receipt: TaxReceipt) -> str:
    latest = (Donation.objects.filter(tax_receipt_lines__receipt=receipt).exclude(donor_email="")
              .order_by("-pk").values("donor_email", "locale", "campaign__locale").first())
    if latest is None:
        return "no e-mail address"
    # The donor's language, else their campaign's, as their gift's receipt e-mail (services/receipts.py).
    lang = latest["locale"] or latest["campaign__locale"] or settings.LANGUAGE_CODE
    with translation.override(lang):
        context = {"receipt": receipt, "url": tax_receipt_url(receipt=receipt, lang=lang),
                   "yearly": receipt.kind == TaxReceipt.Kind.YEARLY,
                   # *Mes dons*: every receipt e-mail carries the donor's page.
                   "gifts_url": donor_links.donor_link_url(donor_key=receipt.donor_key)}
        subject = render_to_string("emails/tax_receipt_subject.txt", context).strip()
        body = render_to_string("emails/tax_receipt.txt", context)
    try:
        connection_.send_messages([EmailMessage(subject=subject, body=body, to=[latest["donor_email"]])])
    except smtplib.SMTPRecipientsRefused:
        return "address refused"
    return ""
