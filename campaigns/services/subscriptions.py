"""Monthly gifts: their instalments gathered under the provider's subscription, and the changes
their donor makes from *Mes dons* (amount, pause, resume, cancel).

A change is asked of the provider first and recorded here only once it said yes, with an audit
entry, in one transaction that holds the subscription's row: two clicks at once (a double submit,
two tabs) are served one after the other, and the second sees what the first did. The row is held
during the provider's call on purpose: it is this one donor's gift, nobody else waits on it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import queue
from campaigns.models import AuditLog, Campaign, Donation, Subscription
from campaigns.providers import stripe as stripe_provider
from campaigns.services import audit

logger = logging.getLogger(__name__)

AMOUNT, PAUSE, RESUME, CANCEL = "amount", "pause", "resume", "cancel"
ACTIONS = (AMOUNT, PAUSE, RESUME, CANCEL)
_AUDIT_ACTION = {
    AMOUNT: AuditLog.Action.MONTHLY_AMOUNT,
    PAUSE: AuditLog.Action.MONTHLY_PAUSE,
    RESUME: AuditLog.Action.MONTHLY_RESUME,
    CANCEL: AuditLog.Action.MONTHLY_CANCEL,
}
# Who the audit log names for a change made from Mes dons: the holder of the donor's signed link.
DONOR_ACTOR = "donor (Mes dons link)"


class SubscriptionChangeRefused(Exception):
    """A change that was not made, and why (`reason`): nothing changed, here or at the provider.

    unknown: not this donor's gift; canceled: already stopped (a second click on cancel);
    stale: the form was drawn before another change; paused / active: already in that state;
    amount: outside the campaign's limits or unchanged; unsupported: not a provider's subscription;
    provider: the provider refused or did not answer (`detail` says what it said)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def instalment_link(*, donation: Donation, campaign: Campaign, source: str, subscription_id: str,
                    customer_id: str) -> Subscription:
    """Tie a paid instalment to its subscription (created with the first one). Called by the intake
    inside its transaction, which holds the campaign's counter: instalments of one subscription
    are applied one at a time, so the get-or-create cannot race."""
    subscription, created = Subscription.objects.get_or_create(
        source=source, external_id=subscription_id,
        defaults={"campaign": campaign, "customer_id": customer_id, "amount_minor": donation.amount_minor,
                  "currency": donation.currency},
    )
    if not created and customer_id and not subscription.customer_id:
        Subscription.objects.filter(pk=subscription.pk).update(customer_id=customer_id)
    if donation.subscription_id != subscription.pk:
        Donation.objects.filter(pk=donation.pk).update(subscription=subscription)
        donation.subscription = subscription
    return subscription


def donor_subscription(*, donor_key: str, subscription_id: int) -> Subscription:
    """The subscription, if one of its instalments is this donor's; `unknown` otherwise."""
    if not Donation.objects.filter(subscription_id=subscription_id, donor_key=donor_key).exists():
        raise SubscriptionChangeRefused("unknown")
    return Subscription.objects.select_related("campaign").get(pk=subscription_id)


def idempotency_key(subscription: Subscription, action: str, amount_minor: int | None = None) -> str:
    """One key per (subscription, version, action[, amount]): a form posted twice sends the same key,
    and Stripe answers the second with its first answer instead of acting twice. If Stripe said yes
    but this side's commit failed, posting the same form again gets that yes back and records it.
    The amount is part of an amount change's key: Stripe refuses a key reused with other parameters,
    which would block a donor who retries with another amount after an error."""
    suffix = f"-{amount_minor}" if action == AMOUNT else ""
    return f"jauge-sub-{subscription.pk}-v{subscription.version}-{action}{suffix}"


def _provider_call(subscription: Subscription, action: str, amount_minor: int | None) -> None:
    if subscription.source != Donation.Source.STRIPE:
        raise SubscriptionChangeRefused("unsupported")
    key, external_id = idempotency_key(subscription, action, amount_minor), subscription.external_id
    try:
        if action == AMOUNT:
            stripe_provider.subscription_amount_change(subscription_id=external_id, amount_minor=amount_minor,
                                                       currency=subscription.currency, idempotency_key=key)
        elif action == PAUSE:
            stripe_provider.subscription_pause(subscription_id=external_id, idempotency_key=key)
        elif action == RESUME:
            stripe_provider.subscription_resume(subscription_id=external_id, idempotency_key=key)
        else:
            stripe_provider.subscription_cancel(subscription_id=external_id, idempotency_key=key)
    except stripe_provider.SubscriptionUnavailable as exc:
        logger.warning("monthly gift %s: %s refused by the provider: %s", subscription, action, exc)
        raise SubscriptionChangeRefused("provider", str(exc)) from exc


def _check(subscription: Subscription, action: str, version: int, amount_minor: int | None) -> None:
    if subscription.status == Subscription.Status.CANCELED:
        raise SubscriptionChangeRefused("canceled")
    if version != subscription.version:
        raise SubscriptionChangeRefused("stale")
    if action == PAUSE and subscription.status == Subscription.Status.PAUSED:
        raise SubscriptionChangeRefused("paused")
    if action == RESUME and subscription.status == Subscription.Status.ACTIVE:
        raise SubscriptionChangeRefused("active")
    if action == AMOUNT:
        campaign = subscription.campaign
        if amount_minor is None or not campaign.min_amount_minor <= amount_minor <= campaign.max_amount_minor:
            raise SubscriptionChangeRefused("amount")
        if amount_minor == subscription.amount_minor:
            raise SubscriptionChangeRefused("amount", "unchanged")


def subscription_change(*, donor_key: str, subscription_id: int, action: str, version: int,
                        amount_minor: int | None = None) -> Subscription:
    """The donor's change to their monthly gift: made at the provider, then here, audited."""
    if action not in ACTIONS:
        raise SubscriptionChangeRefused("unknown", f"no such action {action!r}")
    donor_subscription(donor_key=donor_key, subscription_id=subscription_id)
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().select_related("campaign").get(pk=subscription_id)
        _check(subscription, action, version, amount_minor)
        before = {"status": subscription.status, "amount_minor": subscription.amount_minor}
        key = idempotency_key(subscription, action, amount_minor)
        _provider_call(subscription, action, amount_minor)
        if action == AMOUNT:
            subscription.amount_minor = amount_minor
        else:
            subscription.status = {PAUSE: Subscription.Status.PAUSED, RESUME: Subscription.Status.ACTIVE,
                                   CANCEL: Subscription.Status.CANCELED}[action]
        subscription.version += 1
        subscription.save(update_fields=["amount_minor", "status", "version", "updated_at"])
        audit.audit_record(
            # Not the donor key: a keyed hash of the e-mail, which a GDPR erasure must be able to unlink
            # (it re-keys the donations; this append-only row would keep it). The subscription says which gift.
            actor=None, actor_label=DONOR_ACTOR, action=_AUDIT_ACTION[action],
            reason="Mes dons (lien signé)", campaign_id=subscription.campaign_id,
            amount_minor=subscription.amount_minor, currency=subscription.currency,
            details={"subscription": subscription.external_id, "provider": subscription.source,
                     "idempotency_key": key,
                     "before": before,
                     "after": {"status": subscription.status, "amount_minor": subscription.amount_minor}},
        )
    return subscription


def subscription_portal_url(*, donor_key: str, subscription_id: int, return_url: str) -> str:
    """Stripe's billing portal for the gift's card (nothing changes here: the card is Stripe's)."""
    subscription = donor_subscription(donor_key=donor_key, subscription_id=subscription_id)
    if subscription.status == Subscription.Status.CANCELED:
        raise SubscriptionChangeRefused("canceled")
    try:
        return stripe_provider.billing_portal_url(customer_id=subscription.customer_id, return_url=return_url)
    except stripe_provider.SubscriptionUnavailable as exc:
        raise SubscriptionChangeRefused("provider", str(exc)) from exc


def subscription_sync_request(*, provider: str, subscription_id: str) -> None:
    """A webhook said the gift changed at its provider: mark it due for a sync, in the caller's
    transaction (the one that marks the event processed, so the two commit together), and send the
    sync after the commit. If the task is lost, the mark stays and the sweeper sends it again.

    No mark for a gift Jauge does not know yet (its first paid invoice creates it with the state of
    the day: there is nothing to bring in line) nor for a cancelled one (never read back). The task is
    sent all the same: it costs nothing then, and keeps one path for every subscription event.
    Only a provider `subscription_sync` reads back is marked: another's mark would never clear."""
    if provider == Donation.Source.STRIPE:
        Subscription.objects.filter(source=provider, external_id=subscription_id).exclude(
            status=Subscription.Status.CANCELED).update(sync_requested_at=timezone.now())
    queue.send("sync_subscription", provider, subscription_id)


def subscription_sync(*, provider: str, subscription_id: str) -> Subscription | None:
    """Bring a monthly gift in line with what its provider says now (a webhook said it changed:
    cancelled after failed payments, paused from Stripe's dashboard). Read under the row's lock,
    so it cannot interleave with a donor's change. None when Jauge does not know the gift (yet:
    its first invoice creates it with the state of the day). Safe to run twice: the second run
    finds the state already recorded and changes nothing.

    The sync request (`sync_requested_at`) is cleared once the answer is recorded, only if it is
    still the one this run saw. A webhook processed meanwhile waits for the row's lock, so its
    request lands after this commit and is kept (its own sync follows)."""
    if provider != Donation.Source.STRIPE:
        return None
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().filter(
            source=provider, external_id=subscription_id).first()
        if subscription is None:
            return None
        requested_at = subscription.sync_requested_at
        # A cancelled subscription never comes back at Stripe either: nothing to read.
        if subscription.status != Subscription.Status.CANCELED:
            _state_record(subscription)
        if requested_at is not None:
            Subscription.objects.filter(pk=subscription.pk, sync_requested_at=requested_at).update(
                sync_requested_at=None, sync_swept_at=None)
            subscription.sync_requested_at = subscription.sync_swept_at = None
    return subscription


def _state_record(subscription: Subscription) -> None:
    try:
        status, amount_minor = stripe_provider.subscription_state(subscription_id=subscription.external_id)
    except stripe_provider.SubscriptionUnavailable as exc:
        # Nothing changed and the request stays: the task retries, then the sweeper.
        logger.warning("monthly gift %s not read back from the provider (sync left due): %s", subscription, exc)
        raise
    amount_minor = amount_minor or subscription.amount_minor
    if (status, amount_minor) != (subscription.status, subscription.amount_minor):
        logger.info("monthly gift %s changed at the provider: %s %s -> %s %s", subscription,
                    subscription.status, subscription.amount_minor, status, amount_minor)
        subscription.status, subscription.amount_minor = status, amount_minor
        subscription.version += 1  # a form drawn before is out of date
        subscription.save(update_fields=["status", "amount_minor", "version", "updated_at"])


def subscription_syncs_sweep(*, older_than_seconds: int) -> list[int]:
    """Send again the syncs requested longer ago than `older_than_seconds` and still not done (the
    task was lost, or the provider kept failing), at most once per `older_than_seconds` each: a copy
    sent last time may still wait in the queue. A gift being synced right now (its row locked) is
    left to that sync, which clears its request."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    with transaction.atomic():
        due = list(
            Subscription.objects.select_for_update(skip_locked=True)
            .filter(sync_requested_at__lt=cutoff)
            .filter(Q(sync_swept_at__isnull=True) | Q(sync_swept_at__lt=cutoff))
            .order_by("sync_requested_at")
            .values_list("pk", "source", "external_id")[:1000]
        )
        Subscription.objects.filter(pk__in=[pk for pk, _, _ in due]).update(sync_swept_at=now)
        for _, source, external_id in due:
            queue.send("sync_subscription", source, external_id)
    if due:
        logger.info("sweeper re-sent the sync of %d monthly gifts", len(due))
    return [pk for pk, _, _ in due]
