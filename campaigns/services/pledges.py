"""Pledges: a reader's promise, a pending Donation with a reference, handed to a provider.

A pledge counts nowhere until its provider confirms it (bank transfers count as pending
money meanwhile, once their donor confirmed them: services/pledge_verification.py); a pledge
nobody confirms expires after its provider's delay.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns import queue
from campaigns.models import MAX_AMOUNT_MINOR, Campaign, Donation
from campaigns.providers import CHECKOUTS
from campaigns.providers.sandbox import DECISIONS, sandbox_event_body
from campaigns.references import reference_generate
from campaigns.services import ledger, pledge_verification
from campaigns.signing import SIGNATURE_HEADER, sign

logger = logging.getLogger(__name__)

# Every checkout's pledges expire (settings.PLEDGE_EXPIRY_MINUTES is keyed by their source).
EXPIRING_SOURCES = tuple(checkout.source for checkout in CHECKOUTS.values())


class PledgeError(Exception):
    """A pledge the service refuses (closed campaign, bad state): the message says why."""


def pledge_create(
    *,
    campaign: Campaign,
    provider: str,
    amount_minor: int,
    frequency: str = Donation.Frequency.ONCE,
    donor_name: str = "",
    donor_email: str = "",
    anonymous: bool = False,
    public_amount: bool = False,
    message: str = "",
    article_url: str = "",
    locale: str = "",
    client_address: str = "",
    donor_address: str = "",
    donor_postal_code: str = "",
    donor_city: str = "",
) -> Donation:
    """Create a pending donation with a fresh reference (its external id too).

    A bank-transfer pledge is checked against the per-e-mail and per-address limits of
    unconfirmed pledges (PledgeLimitReached), and its donor gets the bank details by e-mail with
    the link that confirms it (only then does it count as pending money)."""
    if not campaign.is_open:
        raise PledgeError(f"campaign {campaign.slug} is not open to gifts")
    if not campaign.min_amount_minor <= amount_minor <= min(campaign.max_amount_minor, MAX_AMOUNT_MINOR):
        # The global cap too: above it the database refuses the row, which must never pass for
        # a reference collision below.
        raise PledgeError(f"amount {amount_minor} outside the campaign's bounds")
    source = CHECKOUTS[provider].source
    client_key = pledge_verification.client_key_for(address=client_address)
    for _attempt in range(5):
        reference = reference_generate()
        try:
            # A savepoint: a reference collision (unique) is retried with a new code.
            with transaction.atomic():
                if source in ledger.PENDING_SOURCES:
                    # Under the campaign's lock: two pledges at once cannot both pass the limit.
                    ledger.total_lock(campaign_id=campaign.pk)
                    pledge_verification.pledge_limits_check(donor_email=donor_email, client_key=client_key)
                donation, _created = ledger.donation_create(
                    campaign=campaign,
                    source=source,
                    external_id=reference,
                    reference=reference,
                    amount_minor=amount_minor,
                    currency=campaign.currency,
                    frequency=frequency,
                    donor_name=donor_name,
                    donor_email=donor_email,
                    anonymous=anonymous,
                    message=message,
                    article_url=article_url,
                    locale=locale or campaign.locale,
                    public_amount=public_amount,
                    client_key=client_key,
                    donor_address=donor_address,
                    donor_postal_code=donor_postal_code,
                    donor_city=donor_city,
                )
                if source in ledger.PENDING_SOURCES and donor_email:
                    queue.send("send_pledge_details", donation.pk)
            return donation
        except IntegrityError as exc:
            if not _reference_taken(exc):
                raise
            logger.info("reference %s already taken, drawing another", reference)
    raise PledgeError("could not draw a free reference")


def _reference_taken(exc: IntegrityError) -> bool:
    """Only a clash on the reference's unique index is worth another draw; any other integrity
    error (a check constraint) would fail the same way five times."""
    diag = getattr(exc.__cause__, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    return "reference" in constraint or (not constraint and "reference" in str(exc))


def pledges_expire(*, now: datetime | None = None) -> int:
    """Pending pledges older than their provider's delay become expired and count nowhere."""
    now = now or timezone.now()
    expired = 0
    for source in EXPIRING_SOURCES:
        cutoff = now - timedelta(minutes=settings.PLEDGE_EXPIRY_MINUTES[source])
        ids = list(
            Donation.objects.filter(source=source, status=Donation.Status.PENDING, created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("pk", flat=True)[:1000]
        )
        for donation_id in ids:
            with ledger.donation_locked(donation_id=donation_id) as (total, donation):
                ledger.donation_fail(total=total, donation=donation, status=Donation.Status.EXPIRED)
            expired += donation.status == Donation.Status.EXPIRED
    if expired:
        logger.info("%d pending pledges expired", expired)
    # The same beat task catches bank-details e-mails a lost task never sent.
    pledge_verification.pledge_details_sweep()
    return expired


def sandbox_decision_submit(*, donation_id: int, decision: str) -> bool:
    """The reader clicked confirm/decline on the sandbox checkout: send the webhook from a worker."""
    if decision not in DECISIONS:
        raise PledgeError(f"unknown decision {decision!r}")
    donation = Donation.objects.get(pk=donation_id)
    if donation.source != Donation.Source.SANDBOX:
        raise PledgeError(f"pledge {donation.reference} is not a sandbox pledge")
    if donation.status != Donation.Status.PENDING:
        return False
    queue.send("sandbox_webhook_send", donation_id, decision)
    return True


def sandbox_webhook_send(*, donation_id: int, decision: str) -> int:
    """POST the signed generic webhook for a sandbox decision to this site's own /hooks/generic/.

    Raises on a network error or a 5xx so the task retries; 200 (already stored) is success.
    """
    donation = Donation.objects.select_related("campaign").get(pk=donation_id)
    body = sandbox_event_body(donation=donation, decision=decision)
    response = requests.post(
        f"{settings.PUBLIC_URL}/hooks/generic/",
        data=body,
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, settings.GENERIC_WEBHOOK_SECRET),
            "User-Agent": "Jauge-Sandbox/1",
        },
        timeout=10,
    )
    if response.status_code >= 500:
        response.raise_for_status()
    if response.status_code >= 400:
        # A 4xx will not get better by retrying (a secret mismatch between web and worker).
        logger.error("sandbox webhook refused (%s): %s", response.status_code, response.text[:500])
    return response.status_code
