"""Verified promises: a bank-transfer pledge is public pending money only once its donor confirmed it.

Anyone can type a name and an amount, so an unverified promise is never shown: the pledge's
bank details go to the donor's e-mail with a signed, expiring, single-use link, and only opening
it (and pressing the button on the page it leads to, so a mail scanner that follows links does
not confirm for them) counts the pledge in `pending_minor`. Limits per e-mail and per client
address stop one person filling the banner with promises; editors see every pledge in the admin
and can void them in bulk.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from campaigns import money
from campaigns.models import Donation, campaign_text
from campaigns.providers.bank_transfer import bank_details
from campaigns.services import ledger

logger = logging.getLogger(__name__)

_SALT = "jauge.pledge-confirm"


class PledgeLinkError(Exception):
    """A confirmation link that cannot confirm: `reason` says why (invalid, expired, used)."""

    def __init__(self, reason: str, donation: Donation | None = None):
        super().__init__(reason)
        self.reason = reason
        self.donation = donation


class PledgeLimitReached(Exception):
    """Too many unconfirmed bank-transfer pledges from one e-mail or one client address."""


def client_key_for(*, address: str) -> str:
    """A keyed hash of a client address: limits need to compare addresses, not to keep them."""
    if not address:
        return ""
    return ledger.personal_key(b"client:" + address.strip().encode())


def pledge_needs_confirmation(donation: Donation) -> bool:
    return donation.source in ledger.PENDING_SOURCES


def pledge_limits_check(*, donor_email: str, client_key: str, now=None) -> None:
    """Refuse a new bank-transfer pledge when this e-mail or this address already made the
    allowed number of pledges that nobody confirmed, within PLEDGE_LIMIT_WINDOW_HOURS."""
    now = now or timezone.now()
    unconfirmed = Donation.objects.filter(
        source__in=ledger.PENDING_SOURCES,
        status=Donation.Status.PENDING,
        pledge_confirmed_at__isnull=True,
        created_at__gte=now - timedelta(hours=settings.PLEDGE_LIMIT_WINDOW_HOURS),
    )
    if donor_email:
        key = ledger.donor_key_for(email=donor_email)
        if unconfirmed.filter(donor_key=key).count() >= settings.PLEDGE_UNCONFIRMED_MAX_PER_EMAIL:
            raise PledgeLimitReached("email")
    if client_key and (
        unconfirmed.filter(client_key=client_key).count() >= settings.PLEDGE_UNCONFIRMED_MAX_PER_ADDRESS
    ):
        raise PledgeLimitReached("address")


def pledge_confirm_token(*, donation: Donation) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(str(donation.pk))


def pledge_confirm_url(*, donation: Donation) -> str:
    path = reverse("pledge-confirm", kwargs={"slug": donation.campaign.slug,
                                             "token": pledge_confirm_token(donation=donation)})
    return f"{settings.PUBLIC_URL}{path}"


def pledge_from_token(*, token: str) -> Donation:
    """The pledge a link names, if the link is authentic and not expired (not yet whether used)."""
    signer = signing.TimestampSigner(salt=_SALT)
    try:
        donation_id = signer.unsign(token, max_age=timedelta(days=settings.PLEDGE_CONFIRM_DAYS))
    except signing.SignatureExpired:
        raise PledgeLinkError("expired") from None
    except signing.BadSignature:
        raise PledgeLinkError("invalid") from None
    donation = Donation.objects.select_related("campaign").filter(pk=int(donation_id)).first()
    if donation is None or not pledge_needs_confirmation(donation):
        raise PledgeLinkError("invalid")
    return donation


def pledge_confirm_by_donor(*, token: str) -> Donation:
    """The donor confirmed their promise: from now on it counts as pending money. Single use:
    a second use, or a pledge that is no longer pending (paid, expired, voided), is refused."""
    donation = pledge_from_token(token=token)
    with transaction.atomic():
        total = ledger.total_lock(campaign_id=donation.campaign_id)
        donation = Donation.objects.select_for_update().select_related("campaign").get(pk=donation.pk)
        if donation.pledge_confirmed_at is not None:
            raise PledgeLinkError("used", donation)
        if donation.status != Donation.Status.PENDING:
            raise PledgeLinkError("closed", donation)
        donation.pledge_confirmed_at = timezone.now()
        donation.save(update_fields=["pledge_confirmed_at"])
        total.pending_minor += donation.amount_minor
        ledger.total_save(total)
    return donation


def pledge_details_send(*, donation_id: int) -> bool:
    """E-mail the donor the bank details and the link that confirms their promise, once: the
    pledge is claimed before sending and released if sending fails (the task retries, the sweep
    catches what a lost task missed)."""
    claimed_at = timezone.now()
    claimed = Donation.objects.filter(
        pk=donation_id, pledge_details_sent_at__isnull=True, status=Donation.Status.PENDING,
        pledge_confirmed_at__isnull=True, source__in=ledger.PENDING_SOURCES,
    ).exclude(donor_email="").update(pledge_details_sent_at=claimed_at)
    if not claimed:
        return False
    donation = Donation.objects.select_related("campaign").get(pk=donation_id)
    campaign = donation.campaign
    locale = donation.locale or campaign.locale
    try:
        with translation.override(locale):
            context = {
                "donation": donation,
                "campaign": campaign,
                "text": campaign_text(campaign, locale),
                "amount": money.format_money(donation.amount_minor, donation.currency, locale),
                "bank": bank_details(),
                "confirm_url": pledge_confirm_url(donation=donation),
                "confirm_days": settings.PLEDGE_CONFIRM_DAYS,
            }
            subject = render_to_string("emails/pledge_details_subject.txt", context).strip()
            body = render_to_string("emails/pledge_details.txt", context)
        EmailMessage(subject=subject, body=body, to=[donation.donor_email]).send()
    except Exception:
        Donation.objects.filter(pk=donation_id, pledge_details_sent_at=claimed_at).update(pledge_details_sent_at=None)
        raise
    return True


def pledge_details_sweep(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Send the bank-details e-mails a lost task never sent (broker down at the pledge's commit);
    a failure is logged and left for the next sweep. Returns how many were sent."""
    now = timezone.now()
    ids = list(
        Donation.objects.filter(
            source__in=ledger.PENDING_SOURCES, status=Donation.Status.PENDING, pledge_confirmed_at__isnull=True,
            pledge_details_sent_at__isnull=True, created_at__lt=now - older_than,
            created_at__gte=now - timedelta(days=settings.PLEDGE_CONFIRM_DAYS),
        ).exclude(donor_email="").order_by("pk").values_list("pk", flat=True)[:500]
    )
    sent = 0
    for donation_id in ids:
        try:
            sent += pledge_details_send(donation_id=donation_id)
        except Exception:
            logger.warning("bank details for pledge %s not sent, next sweep retries", donation_id, exc_info=True)
    return sent
