"""Receipt e-mails: sent once per confirmed donation, in its campaign's language.

Exactly once is a claim: a conditional UPDATE on receipt_sent_at wins for one task only,
before anything is sent. If sending fails the claim is released so a retry can send; if a
worker dies between the claim and the send, that receipt is lost rather than sent twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone, translation

from campaigns import money
from campaigns.models import Donation

logger = logging.getLogger(__name__)

# Money from readers: editors' manual entries and the demo seed get no e-mail.
RECEIPT_SOURCES = frozenset(
    {Donation.Source.GENERIC, Donation.Source.SANDBOX, Donation.Source.STRIPE, Donation.Source.BANK}
)


def receipt_wanted(donation: Donation) -> bool:
    return bool(donation.donor_email) and donation.source in RECEIPT_SOURCES


def receipt_send(*, donation_id: int) -> bool:
    """Send the receipt unless it was sent already; True when this call sent it."""
    donation = Donation.objects.select_related("campaign").get(pk=donation_id)
    if donation.status != Donation.Status.CONFIRMED or not receipt_wanted(donation):
        return False
    claimed_at = timezone.now()
    claimed = Donation.objects.filter(
        pk=donation_id, receipt_sent_at__isnull=True, status=Donation.Status.CONFIRMED
    ).update(receipt_sent_at=claimed_at)
    if not claimed:
        return False
    campaign = donation.campaign
    with translation.override(campaign.locale):
        context = {
            "donation": donation,
            "campaign": campaign,
            "amount": money.format_money(donation.amount_minor, donation.currency, campaign.locale),
            "monthly": donation.frequency == Donation.Frequency.MONTHLY,
            "page_url": f"{settings.PUBLIC_URL}/c/{campaign.slug}/",
        }
        subject = render_to_string("emails/receipt_subject.txt", context).strip()
        body = render_to_string("emails/receipt.txt", context)
    try:
        EmailMessage(subject=subject, body=body, to=[donation.donor_email]).send()
    except Exception:
        Donation.objects.filter(pk=donation_id, receipt_sent_at=claimed_at).update(receipt_sent_at=None)
        raise
    logger.info("receipt sent for donation %s", donation)
    return True


def receipts_sweep(*, now=None) -> list[int]:
    """Re-enqueue receipts that a lost task never sent (recent confirmations only)."""
    from campaigns.tasks import enqueue_receipt

    now = now or timezone.now()
    ids = list(
        Donation.objects.filter(
            status=Donation.Status.CONFIRMED,
            receipt_sent_at__isnull=True,
            source__in=RECEIPT_SOURCES,
            confirmed_at__gte=now - timedelta(days=2),
            confirmed_at__lt=now - timedelta(minutes=5),
        )
        .exclude(donor_email="")
        .values_list("pk", flat=True)[:500]
    )
    for donation_id in ids:
        enqueue_receipt(donation_id)
    return ids
