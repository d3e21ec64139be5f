"""Stripe: Checkout Sessions out, verified webhooks in (`/hooks/stripe/`).

One-off gifts are `payment` sessions; monthly gifts are `subscription` sessions whose every
paid invoice becomes its own confirmed donation (the first one confirms the pledge).
Amounts are minor units on both sides, as in the rest of Jauge. Two objects share this module:
the checkout (`StripeCheckout`) and the webhook source (`StripeWebhooks`, pure: no database).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from campaigns import money
from campaigns.models import Donation, campaign_text
from campaigns.providers.base import (
    FAILED,
    IGNORED,
    REFUNDED,
    REINSTATED,
    SUBSCRIPTION_CHANGED,
    SUCCEEDED,
    NormalizedEvent,
    PayloadError,
    SignatureError,
    WebhookSource,
)
from campaigns.providers.checkout import Checkout, CheckoutUnavailable

SIGNATURE_HEADER = "Stripe-Signature"
# Events whose data.object is a Refund (the first is what Stripe recommends listening to).
REFUND_EVENTS = ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
# A pending refund has left the balance already; failed and canceled ones never took money.
COUNTED_REFUND_STATUSES = ("succeeded", "pending")
# A monthly gift changed at Stripe (its dashboard, its billing portal, failed payments).
SUBSCRIPTION_EVENTS = ("customer.subscription.updated", "customer.subscription.deleted",
                       "customer.subscription.paused", "customer.subscription.resumed")
REVERSED_REFUND_STATUSES = ("failed", "canceled")


class StripeCheckout(Checkout):
    identifier = "stripe"
    source = Donation.Source.STRIPE
    label = _("Carte bancaire (Stripe)")

    def is_available(self) -> bool:
        return super().is_available() and bool(settings.STRIPE_SECRET_KEY)

    def start(self, *, donation: Donation, base_url: str) -> str:
        campaign = donation.campaign
        # Stripe's page speaks the language the reader gave in, as the rest of the flow does.
        locale = donation.locale or campaign.locale
        monthly = donation.frequency == Donation.Frequency.MONTHLY
        metadata = {
            "pledge_id": str(donation.pk),
            "reference": donation.reference,
            "campaign": campaign.slug,
            "anonymous": "1" if donation.anonymous else "0",
        }
        price_data: dict[str, Any] = {
            "currency": donation.currency.lower(),
            "unit_amount": donation.amount_minor,
            "product_data": {"name": campaign_text(campaign, locale).title[:250]},
        }
        params: dict[str, Any] = {
            "mode": "subscription" if monthly else "payment",
            "line_items": [{"quantity": 1, "price_data": price_data}],
            "success_url": base_url
            + reverse("donate-thanks", kwargs={"slug": campaign.slug, "reference": donation.reference}),
            "cancel_url": base_url + reverse("campaign", kwargs={"slug": campaign.slug}),
            "client_reference_id": donation.reference,
            "metadata": metadata,
            "locale": locale,
        }
        if donation.donor_email:
            params["customer_email"] = donation.donor_email
        if monthly:
            price_data["recurring"] = {"interval": "month"}
            # Copied onto every invoice: how each instalment finds its campaign.
            params["subscription_data"] = {"metadata": metadata}
        else:
            # Copied onto the charge: how refunds and disputes find the pledge.
            params["payment_intent_data"] = {"metadata": metadata}
        try:
            session = stripe.checkout.Session.create(
                api_key=settings.STRIPE_SECRET_KEY,
                # A retried form post must not open a second session for the same pledge.
                idempotency_key=f"jauge-pledge-{donation.reference}",
                **params,
            )
        except stripe.StripeError as exc:
            raise CheckoutUnavailable(str(exc)) from exc
        return session.url


class StripeWebhooks(WebhookSource):
    identifier = "stripe"
    source = Donation.Source.STRIPE
    kept_headers = (SIGNATURE_HEADER, "User-Agent", "Content-Type")

    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> None:
        if not settings.STRIPE_WEBHOOK_SECRET:
            raise SignatureError("STRIPE_WEBHOOK_SECRET not configured")
        if not headers.get(SIGNATURE_HEADER, "").isascii():
            # Stripe's compare_digest raises TypeError on non-ASCII text: that was a 500.
            raise SignatureError("signature header is not ASCII")
        try:
            stripe.Webhook.construct_event(
                body,
                headers.get(SIGNATURE_HEADER, ""),
                settings.STRIPE_WEBHOOK_SECRET,
                tolerance=settings.WEBHOOK_TOLERANCE_SECONDS,
            )
        except stripe.SignatureVerificationError as exc:
            raise SignatureError(str(exc).split(".")[0]) from None
        except UnicodeDecodeError:
            raise SignatureError("body is not UTF-8, cannot be verified") from None
        except ValueError:
            # Signed but not JSON: parse() answers 400 with the reason.
            pass

    def parse(self, body: bytes) -> NormalizedEvent:
        return parse_event(body)


def _obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise PayloadError(path, "must be an object")
    return value


def _int(obj: dict, key: str, path: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError(f"{path}.{key}", "must be a non-negative integer of minor units")
    return value


def _currency(obj: dict, path: str) -> str:
    code = obj.get("currency")
    if not isinstance(code, str) or not money.is_known_currency(code.upper()):
        raise PayloadError(f"{path}.currency", "must be a known ISO 4217 code")
    return code.upper()


def _id(value: Any) -> str:
    """An expandable field's id: Stripe sends the id, or the object itself when expanded."""
    if isinstance(value, dict):
        value = value.get("id")
    return value[:255] if isinstance(value, str) else ""


def _meta(obj: dict) -> dict[str, str]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _refund_like(event_id: str, *, payment_intent: str, metadata: dict, amount: int, currency: str,
                 occurred_at: datetime, kind: str = REFUNDED, extra: dict | None = None) -> NormalizedEvent:
    # Disputes (and charges without our metadata) only name the PaymentIntent: no campaign here,
    # the intake finds the donation that PaymentIntent confirmed once the event is stored.
    reference, campaign = metadata.get("reference", ""), metadata.get("campaign", "")
    return NormalizedEvent(
        event_id=event_id,
        kind=kind,
        donation_external_id=payment_intent or reference,
        campaign_slug=campaign,
        amount_minor=amount,
        currency=currency,
        reference=reference,
        occurred_at=occurred_at,
        extra=extra or {},
    )


def parse_event(body: bytes) -> NormalizedEvent:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PayloadError("body", "not valid JSON") from None
    payload = _obj(payload, "body")
    event_id, event_type = payload.get("id"), payload.get("type")
    if not isinstance(event_id, str) or not event_id:
        raise PayloadError("id", "missing")
    if not isinstance(event_type, str):
        raise PayloadError("type", "missing")
    data = _obj(payload.get("data"), "data")
    obj = _obj(data.get("object"), "data.object")
    created = payload.get("created")
    # Bounded: a timestamp beyond year 9999 would raise instead of answering 400.
    valid_created = isinstance(created, int) and not isinstance(created, bool) and 0 <= created < 253402300800
    occurred_at = datetime.fromtimestamp(created, UTC) if valid_created else None
    path = "data.object"

    if event_type in ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                      "checkout.session.async_payment_failed"):
        metadata = _meta(obj)
        if not metadata.get("campaign") or obj.get("mode") == "subscription":
            # Not ours, or a subscription: its invoices (invoice.paid) carry the money.
            return NormalizedEvent(event_id=event_id, kind=IGNORED)
        failed = event_type == "checkout.session.async_payment_failed"
        if not failed and obj.get("payment_status") != "paid":
            # Delayed methods (SEPA debit): the money is not there yet; async_payment_succeeded follows.
            return NormalizedEvent(event_id=event_id, kind=IGNORED)
        details = obj.get("customer_details") if isinstance(obj.get("customer_details"), dict) else {}
        return NormalizedEvent(
            event_id=event_id,
            kind=FAILED if failed else SUCCEEDED,
            donation_external_id=obj.get("payment_intent") or obj.get("id") or metadata.get("reference", ""),
            campaign_slug=metadata["campaign"],
            amount_minor=_int(obj, "amount_total", path),
            currency=_currency(obj, path),
            donor_name=(details.get("name") or "")[:200],
            donor_email=(details.get("email") or "")[:254],
            anonymous=metadata.get("anonymous") == "1",
            reference=metadata.get("reference", ""),
            occurred_at=occurred_at,
        )

    if event_type == "checkout.session.expired":
        # The reader left without paying: the pledge fails now instead of waiting for expiry.
        metadata = _meta(obj)
        if not metadata.get("campaign") or not metadata.get("reference"):
            return NormalizedEvent(event_id=event_id, kind=IGNORED)
        return NormalizedEvent(
            event_id=event_id,
            kind=FAILED,
            donation_external_id=metadata["reference"],
            campaign_slug=metadata["campaign"],
            amount_minor=_int(obj, "amount_total", path),
            currency=_currency(obj, path),
            reference=metadata["reference"],
            occurred_at=occurred_at,
        )

    if event_type == "invoice.paid":
        parent = obj.get("parent") if isinstance(obj.get("parent"), dict) else {}
        details = parent.get("subscription_details") or obj.get("subscription_details") or {}
        metadata = _meta(details) if isinstance(details, dict) else {}
        amount = _int(obj, "amount_paid", path)
        if not metadata.get("campaign") or amount == 0:
            return NormalizedEvent(event_id=event_id, kind=IGNORED)
        first = obj.get("billing_reason") == "subscription_create"
        return NormalizedEvent(
            event_id=event_id,
            kind=SUCCEEDED,
            # Each instalment is its own donation, keyed by its invoice.
            donation_external_id=obj.get("id") or event_id,
            campaign_slug=metadata["campaign"],
            amount_minor=amount,
            currency=_currency(obj, path),
            donor_name=(obj.get("customer_name") or "")[:200],
            donor_email=(obj.get("customer_email") or "")[:254],
            anonymous=metadata.get("anonymous") == "1",
            # Only the first invoice settles the pledge; later ones must not find it again.
            reference=metadata.get("reference", "") if first else "",
            occurred_at=occurred_at,
            # The subscription and its customer: what the donor's *Mes dons* manages later.
            extra={"frequency": Donation.Frequency.MONTHLY,
                   "subscription": _id(details.get("subscription") or obj.get("subscription")),
                   "customer": _id(obj.get("customer"))},
        )

    if event_type in SUBSCRIPTION_EVENTS:
        # Only a trigger: the subscription's state is read back from Stripe by a worker (events
        # arrive out of order, and Jauge's own changes come back as `updated` too).
        metadata = _meta(obj)
        subscription_id = _id(obj)
        if not metadata.get("campaign") or not subscription_id:
            return NormalizedEvent(event_id=event_id, kind=IGNORED)
        return NormalizedEvent(event_id=event_id, kind=SUBSCRIPTION_CHANGED, campaign_slug=metadata["campaign"],
                               occurred_at=occurred_at, extra={"subscription": subscription_id})

    if event_type in REFUND_EVENTS:
        # A Refund object: its id is the refund's identity (the ledger records it), so the
        # created/updated events and an editor's refund through the API all count it once.
        status = obj.get("status")
        refund_id = obj.get("id")
        if not isinstance(refund_id, str) or not refund_id:
            raise PayloadError(f"{path}.id", "missing")
        amount = _int(obj, "amount", path)
        if status in REVERSED_REFUND_STATUSES:
            # The refund did not go through: if it was counted, its money comes back (once).
            return _refund_like(event_id, payment_intent=obj.get("payment_intent") or "", metadata=_meta(obj),
                                amount=amount, currency=_currency(obj, path), occurred_at=occurred_at,
                                kind=REINSTATED, extra={"refund_reversed": refund_id})
        if status not in COUNTED_REFUND_STATUSES:
            return NormalizedEvent(event_id=event_id, kind=IGNORED)  # requires_action: nothing moved yet
        return _refund_like(event_id, payment_intent=obj.get("payment_intent") or "", metadata=_meta(obj),
                            amount=amount, currency=_currency(obj, path), occurred_at=occurred_at,
                            extra={"refunds": [(refund_id, amount)]})

    if event_type == "charge.refunded":
        # A Charge: since API version 2022-11-15 it lists its refunds only when the endpoint
        # expands `refunds`; Stripe says to listen to refund.created for the refund itself.
        # Only the listed Refund objects count (each by its id), never the cumulative
        # amount_refunded or previous_attributes (which cannot tell two refunds from one).
        listed = obj.get("refunds") if isinstance(obj.get("refunds"), dict) else {}
        refunds = []
        for index, refund in enumerate(listed.get("data") or []):
            refund = _obj(refund, f"{path}.refunds.data[{index}]")
            if refund.get("status") in COUNTED_REFUND_STATUSES and isinstance(refund.get("id"), str):
                refunds.append((refund["id"], _int(refund, "amount", f"{path}.refunds.data[{index}]")))
        if not refunds:
            return NormalizedEvent(event_id=event_id, kind=IGNORED)
        return _refund_like(event_id, payment_intent=obj.get("payment_intent") or "", metadata=_meta(obj),
                            amount=sum(amount for _id, amount in refunds), currency=_currency(obj, path),
                            occurred_at=occurred_at, extra={"refunds": refunds})

    if event_type in ("charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated"):
        # A dispute's money moves at most twice, whatever events announce it: withdrawn (at
        # creation, or when an inquiry escalates), then reinstated if the dispute is won. The
        # dispute id keys each move (`extra`), so `created` and `funds_withdrawn` count once.
        if event_type == "charge.dispute.created" and str(obj.get("status", "")).startswith("warning_"):
            return NormalizedEvent(event_id=event_id, kind=IGNORED)  # an inquiry: no money taken yet
        dispute_id = obj.get("id")
        if not isinstance(dispute_id, str) or not dispute_id:
            raise PayloadError(f"{path}.id", "missing")
        reinstated = event_type == "charge.dispute.funds_reinstated"
        return _refund_like(event_id, payment_intent=obj.get("payment_intent") or "", metadata=_meta(obj),
                            amount=_int(obj, "amount", path), currency=_currency(obj, path),
                            occurred_at=occurred_at, kind=REINSTATED if reinstated else REFUNDED,
                            extra={"dispute": dispute_id})

    return NormalizedEvent(event_id=event_id, kind=IGNORED)


class RefundUnavailable(Exception):
    """Stripe refused or did not answer an editor's refund: nothing was recorded."""


def refund_create(
    *, donation: Donation, payment_intent: str, amount_minor: int, idempotency_key: str
) -> tuple[str, int]:
    """Refund a Stripe gift (paid by `payment_intent`) through Stripe's API; returns (the Refund's
    id, its amount). The same key sent twice (a double-submitted form) gets Stripe's first answer
    back, not a second refund."""
    if not settings.STRIPE_SECRET_KEY:
        raise RefundUnavailable("STRIPE_SECRET_KEY is not configured")
    if not payment_intent:
        # A monthly instalment is keyed by its invoice: refund it from Stripe's dashboard, its
        # refund.created event then counts it here.
        raise RefundUnavailable(f"donation {donation} names no PaymentIntent: refund it in Stripe's dashboard")
    try:
        refund = stripe.Refund.create(
            api_key=settings.STRIPE_SECRET_KEY,
            idempotency_key=idempotency_key,
            payment_intent=payment_intent,
            amount=amount_minor,
            metadata={"reference": donation.reference or "", "campaign": donation.campaign.slug},
        )
    except stripe.StripeError as exc:
        raise RefundUnavailable(str(exc)) from exc
    status = getattr(refund, "status", None)
    if status not in COUNTED_REFUND_STATUSES:
        raise RefundUnavailable(f"Stripe answered refund {refund.id} with status {status!r}")
    return refund.id, refund.amount


class SubscriptionUnavailable(Exception):
    """Stripe refused or did not answer a change to a monthly gift: nothing was changed here."""


def _call(method, *args, **kwargs):
    if not settings.STRIPE_SECRET_KEY:
        raise SubscriptionUnavailable("STRIPE_SECRET_KEY is not configured")
    try:
        return method(*args, api_key=settings.STRIPE_SECRET_KEY, **kwargs)
    except stripe.StripeError as exc:
        raise SubscriptionUnavailable(str(exc)) from exc


def subscription_state(*, subscription_id: str) -> tuple[str, int | None]:
    """What Stripe says of a monthly gift now: (`active` | `paused` | `canceled`, monthly amount)."""
    current = _call(stripe.Subscription.retrieve, subscription_id).to_dict()  # a StripeObject is no dict
    status = current.get("status")
    if status in ("canceled", "incomplete_expired"):
        state = "canceled"
    elif current.get("pause_collection") or status == "paused":
        state = "paused"
    else:
        state = "active"  # past_due and unpaid included: Stripe still tries to collect
    try:
        amount = current["items"]["data"][0]["price"]["unit_amount"]
    except (KeyError, IndexError, TypeError):
        amount = None
    return state, amount if isinstance(amount, int) and amount > 0 else None


def subscription_amount_change(*, subscription_id: str, amount_minor: int, currency: str,
                               idempotency_key: str) -> None:
    """The next instalments cost `amount_minor`. A subscription item's inline price needs the
    product's id (not product_data) and the item's id: both are read from the subscription first.
    No proration: the month already paid stays as it was."""
    current = _call(stripe.Subscription.retrieve, subscription_id).to_dict()
    try:
        item = current["items"]["data"][0]
        product = item["price"]["product"]
        product = product["id"] if isinstance(product, dict) else product
        item_id = item["id"]
    except (KeyError, IndexError, TypeError) as exc:
        raise SubscriptionUnavailable(f"subscription {subscription_id} has no item to change") from exc
    _call(
        stripe.Subscription.modify, subscription_id, idempotency_key=idempotency_key,
        items=[{"id": item_id, "price_data": {"currency": currency.lower(), "product": product,
                                              "unit_amount": amount_minor, "recurring": {"interval": "month"}}}],
        proration_behavior="none",
    )


def subscription_pause(*, subscription_id: str, idempotency_key: str) -> None:
    # `void`: invoices of the paused months are voided, nothing is charged or owed later.
    _call(stripe.Subscription.modify, subscription_id, idempotency_key=idempotency_key,
          pause_collection={"behavior": "void"})


def subscription_resume(*, subscription_id: str, idempotency_key: str) -> None:
    # An empty value unsets pause_collection (Stripe's way to resume collection).
    _call(stripe.Subscription.modify, subscription_id, idempotency_key=idempotency_key, pause_collection="")


def subscription_cancel(*, subscription_id: str, idempotency_key: str) -> None:
    _call(stripe.Subscription.cancel, subscription_id, idempotency_key=idempotency_key)


def billing_portal_url(*, customer_id: str, return_url: str) -> str:
    """A short-lived page at Stripe where the donor changes their card (and only that: the flow
    is `payment_method_update`, so amounts and cancelling stay with Jauge, which audits them)."""
    if not customer_id:
        raise SubscriptionUnavailable("no Stripe customer is known for this gift")
    session = _call(stripe.billing_portal.Session.create, customer=customer_id, return_url=return_url,
                    flow_data={"type": "payment_method_update"})
    return session.url
