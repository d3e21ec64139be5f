"""GDPR erasure: forget who gave, keep what was given.

The money (amounts, ledger, totals, counts) stays exactly as it was; the donor's personal
data is blanked everywhere Jauge stores it: the donations' fields and the raw webhook
payloads and headers (whose amounts stay intact, since deferred refunds re-parse them).
"""

from __future__ import annotations

import json
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

# Keys whose whole value is personal data, in any provider's payload (generic, Stripe…).
PERSONAL_KEYS = frozenset({
    "name", "email", "first_name", "last_name", "full_name", "phone", "address", "donor_name",
    "donor_email", "customer_email", "receipt_email", "billing_details", "customer_details",
    "shipping", "shipping_details", "payer", "payer_name", "payer_email", "message", "ip", "ip_address",
})
# Shorter strings are too likely to match innocent text (a two-letter name inside an id).
_MIN_NEEDLE = 3


@dataclass(frozen=True)
class ErasureResult:
    donation_ids: list[int]
    event_ids: list[int]


def _blank_leaves(value: Any) -> Any:
    if isinstance(value, str):
        return ""
    if isinstance(value, dict):
        return {key: _blank_leaves(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_blank_leaves(item) for item in value]
    return value  # numbers, booleans, null: amounts and flags are not personal


def _scrub_text(text: str, needles: list[str]) -> str:
    for needle in needles:
        text = text.replace(needle, "")
    return text


def scrub_payload(value: Any, needles: list[str]) -> Any:
    """A copy of a decoded JSON payload with personal keys blanked and the donor's own name
    and e-mail removed from every other string; numbers are never touched."""
    if isinstance(value, dict):
        return {
            key: _blank_leaves(item) if key.lower() in PERSONAL_KEYS else scrub_payload(item, needles)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub_payload(item, needles) for item in value]
    if isinstance(value, str):
        return _scrub_text(value, needles)
    return value


def scrub_body(body: str, needles: list[str]) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return _scrub_text(body, needles)
    return json.dumps(scrub_payload(payload, needles), ensure_ascii=False)


def _needles(donations: list[Donation]) -> list[str]:
    found = {value.strip() for d in donations for value in (d.donor_name, d.donor_email) if value}
    # Longest first, so "Marie Curie" goes before "Marie".
    return sorted((n for n in found if len(n) >= _MIN_NEEDLE), key=len, reverse=True)


def _events_of(donations: list[Donation], *, nowait: bool = False) -> list[PaymentEvent]:
    providers_by_source: dict[str, list[str]] = {}
    for identifier, handler in WEBHOOK_SOURCES.items():
        providers_by_source.setdefault(handler.source, []).append(identifier)
    query = Q(donation_id__in=[d.pk for d in donations])
    for donation in donations:
        for provider in providers_by_source.get(donation.source, []):
            query |= Q(provider=provider, donation_external_id=donation.external_id)
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
        needles = _needles(donations)
        for event in events:
            event.body = scrub_body(event.body, needles)
            event.headers = scrub_payload(event.headers, needles) if isinstance(event.headers, dict) else {}
            event.last_error = _scrub_text(event.last_error, needles)
            event.save(update_fields=["body", "headers", "last_error"])
        # One new opaque key for the whole group: the donor still counts once per campaign
        # (totals unchanged), but the key can no longer be matched against an e-mail.
        opaque_key = "x:" + uuid.uuid4().hex
        for donation in donations:
            donation.donor_name = ""
            donation.donor_email = ""
            donation.message = ""
            donation.donor_key = opaque_key
            donation.save(update_fields=["donor_name", "donor_email", "message", "donor_key"])
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
