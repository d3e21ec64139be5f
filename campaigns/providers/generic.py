"""The generic signed webhook of the public contract (`/hooks/generic/`).

`X-Jauge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.dateparse import parse_datetime

from campaigns import money
from campaigns.models import MAX_AMOUNT_MINOR, Donation
from campaigns.providers.base import (
    FAILED,
    REFUNDED,
    SUCCEEDED,
    NormalizedEvent,
    PayloadError,
    WebhookSource,
)
from campaigns.signing import SIGNATURE_HEADER, sign, verify_signature

__all__ = ["SIGNATURE_HEADER", "GenericWebhooks", "parse_body", "sign", "verify_signature"]

EVENT_TYPES = {
    "donation.succeeded": SUCCEEDED,
    "donation.refunded": REFUNDED,
    "donation.failed": FAILED,
}


def _require(obj: dict, key: str, kind: type, path: str):
    value = obj.get(key)
    if value is None:
        raise PayloadError(path, "missing")
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise PayloadError(path, f"must be {'an integer' if kind is int else kind.__name__}")
    if kind is str and not value.strip():
        raise PayloadError(path, "must not be empty")
    return value


def parse_body(body: bytes) -> NormalizedEvent:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PayloadError("body", "not valid JSON") from None
    if not isinstance(payload, dict):
        raise PayloadError("body", "must be a JSON object")
    event_id = _require(payload, "id", str, "id")
    if len(event_id) > 255:
        raise PayloadError("id", "longer than 255 characters")
    event_type = _require(payload, "type", str, "type")
    if event_type not in EVENT_TYPES:
        raise PayloadError("type", f"must be one of {', '.join(EVENT_TYPES)}")
    data = _require(payload, "data", dict, "data")
    donation_id = _require(data, "donation_id", str, "data.donation_id")
    if len(donation_id) > 255:
        raise PayloadError("data.donation_id", "longer than 255 characters")
    campaign = _require(data, "campaign", str, "data.campaign")
    amount = data.get("amount_minor")
    if amount is None:
        raise PayloadError("data.amount_minor", "missing")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise PayloadError("data.amount_minor", "must be an integer number of minor units")
    if amount <= 0:
        raise PayloadError("data.amount_minor", "must be greater than zero")
    if amount > MAX_AMOUNT_MINOR:
        raise PayloadError("data.amount_minor", f"must be at most {MAX_AMOUNT_MINOR}")
    currency = _require(data, "currency", str, "data.currency")
    if len(currency) != 3 or not currency.isupper() or not money.is_known_currency(currency):
        raise PayloadError("data.currency", "must be a known ISO 4217 code such as EUR")
    donor = data.get("donor") or {}
    if not isinstance(donor, dict):
        raise PayloadError("data.donor", "must be an object")
    name = donor.get("name") or ""
    email = donor.get("email") or ""
    anonymous = donor.get("anonymous", False)
    if not isinstance(name, str) or len(name) > 200:
        raise PayloadError("data.donor.name", "must be a string of at most 200 characters")
    if not isinstance(email, str) or len(email) > 254:
        raise PayloadError("data.donor.email", "must be a string of at most 254 characters")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise PayloadError("data.donor.email", "must be a valid e-mail address") from None
    if not isinstance(anonymous, bool):
        raise PayloadError("data.donor.anonymous", "must be true or false")
    occurred_at: datetime | None = None
    if data.get("occurred_at") is not None:
        raw = data["occurred_at"]
        try:
            occurred_at = parse_datetime(raw) if isinstance(raw, str) else None
        except ValueError:  # well formed but impossible (2023-13-45): not a 500
            occurred_at = None
        if occurred_at is None or occurred_at.tzinfo is None:
            raise PayloadError("data.occurred_at", "must be an ISO 8601 date-time with a time zone")
    reference = data.get("reference") or ""
    if not isinstance(reference, str):
        raise PayloadError("data.reference", "must be a string")
    # Optional: the provider's own id of a refund, so that one refund announced by several
    # events counts once (without it, each refund event is its own refund).
    refund_id = data.get("refund_id") or ""
    if not isinstance(refund_id, str) or len(refund_id) > 255:
        raise PayloadError("data.refund_id", "must be a string of at most 255 characters")
    return NormalizedEvent(
        event_id=event_id,
        kind=EVENT_TYPES[event_type],
        donation_external_id=donation_id,
        campaign_slug=campaign,
        amount_minor=amount,
        currency=currency,
        donor_name=name,
        donor_email=email,
        anonymous=anonymous,
        occurred_at=occurred_at,
        reference=reference,
        extra={"refund_id": refund_id} if refund_id else {},
    )


class GenericWebhooks(WebhookSource):
    identifier = "generic"
    source = Donation.Source.GENERIC
    kept_headers = (SIGNATURE_HEADER, "User-Agent", "Content-Type")

    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> None:
        verify_signature(
            headers.get(SIGNATURE_HEADER, ""),
            body,
            settings.GENERIC_WEBHOOK_SECRET,
            settings.WEBHOOK_TOLERANCE_SECONDS,
        )

    def parse(self, body: bytes) -> NormalizedEvent:
        return parse_body(body)
