"""Receipt e-mails: sent once per confirmed donation, in its donor's language (else its campaign's).

Batched: a confirmation does not send its own receipt. Its commit makes sure one `send_receipts`
task is scheduled a few seconds ahead (`receipts_schedule`); that task sends every receipt due
by then over one mail connection. A burst of a thousand gifts costs a handful of tasks and SMTP
sessions instead of a thousand, and the money path keeps the worker's time.

Exactly once is a claim: a receipt is marked sent (receipt_sent_at) in the database before it
is sent, by one task only. If sending fails the claim is released so a retry can send; if a
worker dies between the claim and the send, that receipt is lost rather than sent twice.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone, translation

from campaigns import money, queue
from campaigns.models import RECEIPT_SOURCES, Donation, campaign_text
from campaigns.selectors.tax_receipts import receipts_enabled
from campaigns.services import donor_links, tax_receipts

logger = logging.getLogger(__name__)

# Set while a `send_receipts` task is scheduled and has not started: confirmations in between
# rely on it. The task clears it before it looks, so nothing confirmed later is left waiting.
_SCHEDULED_KEY = "receipts:scheduled"
# If that task is lost (a killed worker), the next confirmation after this delay schedules
# another, and beat runs the task every few minutes anyway.
_SCHEDULED_TTL_SECONDS = 60
BATCH_SIZE = 100
# On Redis (kombu's priority lists, 0 first) webhooks go before receipts: during a burst the
# money reaches the totals first and the e-mails follow once the backlog is applied.
RECEIPTS_PRIORITY = 9
# Receipts for donations recorded or confirmed longer ago than this are never sent (an old
# failure is an editor's business, not a surprise e-mail months later).
RECEIPT_WINDOW = timedelta(days=2)


def receipt_wanted(donation: Donation) -> bool:
    return bool(donation.donor_email) and donation.source in RECEIPT_SOURCES


def receipts_schedule() -> None:
    """After a confirmation's commit: make sure a `send_receipts` task will run soon.

    With a shared cache (Redis), one task per RECEIPTS_BATCH_SECONDS however many donations
    are confirmed; without one (the embedded `make run`), one task per confirmation."""
    if settings.REDIS_URL:
        try:
            if not cache.add(_SCHEDULED_KEY, 1, _SCHEDULED_TTL_SECONDS):
                return  # a task is already on its way and will see this donation
        except Exception:
            logger.warning("cache unavailable: scheduling a receipts task anyway", exc_info=True)
    queue.send("send_receipts", countdown=settings.RECEIPTS_BATCH_SECONDS, priority=RECEIPTS_PRIORITY)


def _due(now) -> QuerySet[Donation]:
    # The same conditions as the partial index `donation_receipt_due`, so it is used.
    cutoff = now - RECEIPT_WINDOW
    return Donation.objects.filter(
        Q(receipt_sent_at__isnull=True, status=Donation.Status.CONFIRMED, source__in=RECEIPT_SOURCES)
        & ~Q(donor_email=""),
        Q(created_at__gte=cutoff) | Q(confirmed_at__gte=cutoff),
    )


def receipts_send_due(*, batch_size: int = BATCH_SIZE) -> int:
    """Send every receipt due, in batches over one mail connection each; the number sent."""
    try:
        cache.delete(_SCHEDULED_KEY)  # first: anything confirmed from now on schedules a new task
    except Exception:
        logger.warning("cache unavailable while sending receipts", exc_info=True)
    sent = 0
    while True:
        claimed_at = timezone.now()
        with transaction.atomic():
            # SKIP LOCKED: two tasks running at once share the work instead of queuing.
            ids = list(
                _due(claimed_at).select_for_update(skip_locked=True).order_by("pk").values_list("pk", flat=True)[
                    :batch_size
                ]
            )
            Donation.objects.filter(pk__in=ids).update(receipt_sent_at=claimed_at)
        if not ids:
            return sent
        sent += _send_claimed(ids, claimed_at)


def _send_claimed(ids: list[int], claimed_at) -> int:
    """Send each claimed receipt on its own: a refused address fails that receipt alone (kept
    with its error, never retried), an address that cannot be an address is skipped; only a
    connection problem stops the batch (the unsent are released for a retry)."""
    donations = Donation.objects.filter(pk__in=ids).select_related("campaign").order_by("pk")
    tax_on = receipts_enabled()  # read once a batch, not once a receipt
    sent = 0
    done: list[int] = []
    try:
        with get_connection() as connection:  # one SMTP session for the batch
            for donation in donations:
                error = _send_one(connection, donation, tax_on=tax_on)
                done.append(donation.pk)
                if error:
                    Donation.objects.filter(pk=donation.pk).update(receipt_error=error[:500])
                    logger.warning("receipt for %s not sent: %s", donation, error)
                else:
                    sent += 1
    except Exception:
        unsent = [pk for pk in ids if pk not in set(done)]
        Donation.objects.filter(pk__in=unsent, receipt_sent_at=claimed_at).update(receipt_sent_at=None)
        logger.warning("receipts: %d sent, %d left for a retry", sent, len(unsent))
        raise
    logger.info("receipts: %d sent", sent)
    return sent


def _send_one(connection, donation: Donation, *, tax_on: bool) -> str:
    """'' when sent; the reason when this receipt alone cannot be sent (skipped or refused)."""
    try:
        validate_email(donation.donor_email)
    except ValidationError:
        return "skipped: not a valid e-mail address"
    try:
        connection.send_messages([_receipt_message(donation, tax_on=tax_on)])
    except smtplib.SMTPRecipientsRefused as exc:
        # The server refused this address (550 and the like): smtplib has reset the session,
        # the next receipt goes through the same connection.
        codes = ", ".join(f"{code} {reply.decode(errors='replace')}" for code, reply in exc.recipients.values())
        return f"failed: address refused ({codes})"
    return ""


def _tax_receipt_context(donation: Donation, locale: str, *, tax_on: bool) -> dict:
    """The tax receipt the e-mail links to (issued now for a one-off gift, when it can be), or
    the promise of the yearly summary for a monthly gift."""
    if not tax_on:
        return {}
    receipt = tax_receipts.tax_receipt_issue_quietly(donation=donation, enabled=True)
    if receipt is not None:
        return {"tax_receipt": receipt, "tax_receipt_url": tax_receipts.tax_receipt_url(receipt=receipt, lang=locale)}
    return {"tax_receipt_yearly": donation.frequency == Donation.Frequency.MONTHLY}


def _receipt_message(donation: Donation, *, tax_on: bool) -> EmailMessage:
    campaign = donation.campaign
    # The donor's language (the page they gave on); a gift from elsewhere (a webhook) has none.
    locale = donation.locale or campaign.locale
    tax_context = _tax_receipt_context(donation, locale, tax_on=tax_on)
    with translation.override(locale):
        context = {
            **tax_context,
            "donation": donation,
            "campaign": campaign,
            "text": campaign_text(campaign, locale),
            "amount": money.format_money(donation.amount_minor, donation.currency, locale),
            "monthly": donation.frequency == Donation.Frequency.MONTHLY,
            "page_url": f"{settings.PUBLIC_URL}/c/{campaign.slug}/",
            # *Mes dons*: every gift of this address, and its monthly gifts to manage.
            "gifts_url": donor_links.donor_link_url(donor_key=donation.donor_key),
        }
        subject = render_to_string("emails/receipt_subject.txt", context).strip()
        body = render_to_string("emails/receipt.txt", context)
    return EmailMessage(subject=subject, body=body, to=[donation.donor_email])
