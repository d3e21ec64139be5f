"""GDPR erasure: forget who gave, keep what was given.

The money (amounts, ledger, totals, counts) stays exactly as it was; the donor's personal
data is blanked everywhere Jauge stores it: the donations' fields and every raw webhook payload
that mentions the donor, walked as JSON so that ids, types, currencies, slugs and amounts stay
exactly as they were (deferred refunds and retries re-parse them).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import OperationalError, transaction
from django.db.models import Q

from campaigns.models import AuditLog, CampaignTotal, Donation, PaymentEvent
from campaigns.providers import WEBHOOK_SOURCES
from campaigns.services.audit import audit_record, require_reason
from campaigns.services.campaigns import campaign_changed

# Keys whose whole value is personal data, in any provider's payload (generic, Stripe…); free-text
# keys too (a note or a description may carry a name). Their values are blanked, whatever they say.
PERSONAL_KEYS = frozenset({
    "name", "email", "first_name", "last_name", "full_name", "phone", "address", "donor_name",
    "donor_email", "customer_email", "customer_name", "customer_phone", "customer_address", "receipt_email",
    "billing_details", "customer_details", "shipping", "shipping_details", "payer", "payer_name", "payer_email",
    "message", "ip", "ip_address", "client_ip", "remote_addr", "x-forwarded-for", "x-real-ip",
    "note", "notes", "comment", "comments", "description", "memo",
})
# What makes an event an event: never touched, whatever a donor is called ("ation" must not turn
# `donation.refunded` into `don.refunded`). Keys ending in `_id`, `id`, `currency` or starting with
# `amount` are structural too (see _structural).
STRUCTURAL_KEYS = frozenset({
    "id", "object", "type", "currency", "campaign", "slug", "reference", "status", "mode", "created",
    "livemode", "api_version", "payment_intent", "charge", "invoice", "subscription", "customer",
    "occurred_at", "anonymous", "client_reference_id", "payment_status", "billing_reason",
})
# Shorter names are too likely to match innocent words.
_MIN_NEEDLE = 3


@dataclass(frozen=True)
class ErasureResult:
    donation_ids: list[int]
    event_ids: list[int]


def _structural(key: str) -> bool:
    key = key.lower()
    return (
        key in STRUCTURAL_KEYS or key.endswith("_id") or key.endswith("id") and len(key) <= 4
        or key.startswith("amount") or key.endswith("currency")
    )


def _blank_leaves(value: Any) -> Any:
    if isinstance(value, str):
        return ""
    if isinstance(value, dict):
        return {key: _blank_leaves(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_blank_leaves(item) for item in value]
    return value  # numbers, booleans, null: amounts and flags are not personal


def _mentions(text: str, patterns: list[re.Pattern]) -> bool:
    return any(pattern.search(text) for pattern in patterns)


def scrub_payload(value: Any, patterns: list[re.Pattern]) -> Any:
    """A copy of a decoded JSON payload, walked key by key: personal keys blanked; any other
    string that names the donor (their e-mail, or their name as a whole word) blanked whole;
    structural keys (ids, types, currencies, slugs, amounts) and every number kept as they are."""
    if isinstance(value, dict):
        scrubbed = {}
        for key, item in value.items():
            if not isinstance(key, str) or _structural(key) and not isinstance(item, (dict, list)):
                # A structural value is a scalar; Stripe's `data.object` (or an expanded
                # `customer`) is a container that is walked like the rest.
                scrubbed[key] = item
            elif key.lower() in PERSONAL_KEYS:
                scrubbed[key] = _blank_leaves(item)
            else:
                scrubbed[key] = scrub_payload(item, patterns)
        return scrubbed
    if isinstance(value, list):
        return [scrub_payload(item, patterns) for item in value]
    if isinstance(value, str) and _mentions(value, patterns):
        return ""
    return value


def scrub_body(body: str, patterns: list[re.Pattern]) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        # Not JSON (never stored as money): nothing structural to keep, blank what names them.
        return "" if _mentions(body, patterns) else body
    return json.dumps(scrub_payload(payload, patterns), ensure_ascii=False)


def _patterns(donations: list[Donation]) -> list[re.Pattern]:
    """The donor's e-mail anywhere in a string, their name as a whole word (case-insensitive)."""
    emails = {d.donor_email.strip() for d in donations if d.donor_email.strip()}
    names = {d.donor_name.strip() for d in donations if len(d.donor_name.strip()) >= _MIN_NEEDLE}
    patterns = [re.compile(re.escape(email), re.IGNORECASE) for email in emails]
    patterns += [re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE) for name in names]
    return patterns


def _events_of(donations: list[Donation], *, nowait: bool = False) -> list[PaymentEvent]:
    """Every stored event that mentions one of these donations: linked to it, or naming it by its
    external id (its own providers), its reference or the payment intent its events named (any
    provider: the sandbox posts generic events, Stripe's refunds and disputes name only the
    PaymentIntent), or carrying the donor's e-mail (a failed event linked to nothing)."""
    providers_by_source: dict[str, list[str]] = {}
    for identifier, handler in WEBHOOK_SOURCES.items():
        providers_by_source.setdefault(handler.source, []).append(identifier)
    ids = [d.pk for d in donations]
    query = Q(donation_id__in=ids)
    for donation in donations:
        for provider in providers_by_source.get(donation.source, []):
            query |= Q(provider=provider, donation_external_id=donation.external_id)
    keys = {d.reference for d in donations if d.reference}
    keys |= {
        key for key in PaymentEvent.objects.filter(donation_id__in=ids).values_list("donation_external_id", flat=True)
        if key.startswith("pi_")
    }
    if keys:
        query |= Q(donation_external_id__in=keys)
    for email in {d.donor_email.strip() for d in donations if d.donor_email.strip()}:
        query |= Q(body__icontains=email)
    return list(PaymentEvent.objects.select_for_update(nowait=nowait).filter(query).order_by("pk"))


# The intake's worker holds a payment event, then takes the counter, the donation and that
# donation's deferred refund events (event → total → donation → deferred event): no order of the
# erasure's own fits every such chain. So the erasure never waits while it holds a lock: each attempt
# takes all of its locks with NOWAIT, or lets go of everything and tries again a moment later.
_LOCK_ATTEMPTS = 40


def _lock_retry_pause(attempt: int) -> None:
    time.sleep(min(0.02 * (attempt + 1), 0.25))


def _lock_not_available(exc: OperationalError) -> bool:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) == "55P03" or getattr(cause, "pgcode", None) == "55P03"


def donor_erase(*, actor: AbstractBaseUser, donation_id: int, reason: str) -> ErasureResult:
    """Erase the personal data of the donor of `donation_id`, in all their donations (same
    e-mail), and in the raw events that carried them."""
    reason = require_reason(reason)
    for attempt in range(_LOCK_ATTEMPTS):
        try:
            return _donor_erase(actor=actor, donation_id=donation_id, reason=reason, nowait=True)
        except OperationalError as exc:
            if not _lock_not_available(exc):
                raise
            _lock_retry_pause(attempt)
    # Busy for seconds: wait like any writer (PostgreSQL breaks a deadlock if one forms).
    return _donor_erase(actor=actor, donation_id=donation_id, reason=reason, nowait=False)


def _donor_erase(*, actor: AbstractBaseUser, donation_id: int, reason: str, nowait: bool) -> ErasureResult:
    with transaction.atomic():
        first = Donation.objects.get(pk=donation_id)
        group = Q(pk=first.pk)
        if first.donor_key.startswith("e:"):
            group |= Q(donor_key=first.donor_key)
        unlocked = list(Donation.objects.filter(group))
        _events_of(unlocked, nowait=nowait)
        # The campaigns' counters too: a new gift's donor check runs under that lock, and must
        # not see the old donor key on one gift while the erasure moves the others to a new one.
        campaign_ids = sorted({d.campaign_id for d in unlocked})
        list(CampaignTotal.objects.select_for_update(nowait=nowait).filter(campaign_id__in=campaign_ids)
             .order_by("campaign_id").values_list("pk", flat=True))
        donations = list(Donation.objects.select_for_update(nowait=nowait).filter(group).order_by("pk"))
        # Again with the locked donations: the events locked above come back at once, and a gift
        # of this donor that arrived in between (rare) brings its own events along.
        events = _events_of(donations, nowait=nowait)
        patterns = _patterns(donations)
        for event in events:
            event.body = scrub_body(event.body, patterns)
            event.headers = scrub_payload(event.headers, patterns) if isinstance(event.headers, dict) else {}
            # Jauge's own error texts name no donor; one quoting a payload would be blanked whole.
            if _mentions(event.last_error, patterns):
                event.last_error = "(erased: the error quoted personal data)"
            event.save(update_fields=["body", "headers", "last_error"])
        # One new opaque key for the whole group: the donor still counts once per campaign
        # (totals unchanged), but the key can no longer be matched against an e-mail.
        opaque_key = "x:" + uuid.uuid4().hex
        for donation in donations:
            donation.donor_name = ""
            donation.donor_email = ""
            donation.message = ""
            # The postal address too; tax receipts already issued keep theirs (a legal record the
            # publication must keep: GDPR art. 17(3)(b)).
            donation.donor_address = donation.donor_postal_code = donation.donor_city = ""
            donation.donor_key = opaque_key
            donation.client_key = ""
            donation.save(update_fields=["donor_name", "donor_email", "message", "donor_address", "donor_postal_code",
                                         "donor_city", "donor_key", "client_key"])
        audit_record(
            actor=actor,
            action=AuditLog.Action.ERASURE,
            reason=reason,
            campaign_id=first.campaign_id,
            donation_id=first.pk,
            details={"donations": [d.pk for d in donations], "events": [e.pk for e in events]},
        )
        for campaign_id in {d.campaign_id for d in donations}:
            campaign_changed(campaign_id=campaign_id)  # a donor wall may show the name
    return ErasureResult(donation_ids=[d.pk for d in donations], event_ids=[e.pk for e in events])
