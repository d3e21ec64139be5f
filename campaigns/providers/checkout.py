"""Providers a reader can pay with from the donation page: they turn a pledge into a checkout.

A `CheckoutProvider` is also a `PaymentProvider` (webhooks), so one registry knows them all;
a provider whose money arrives by another path (the sandbox posts to the generic webhook,
bank transfers come with the statement import) refuses webhooks of its own.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings

from campaigns.models import Donation
from campaigns.providers.base import NormalizedEvent, PayloadError, PaymentProvider, SignatureError


class CheckoutUnavailable(Exception):
    """The provider cannot start a checkout now (outage, configuration): the pledge stays pending."""


class CheckoutProvider(PaymentProvider):
    # What the donation form shows (a lazy translation).
    label: ClassVar[str]
    supports_monthly: ClassVar[bool] = True

    def is_available(self) -> bool:
        return self.identifier in settings.PAYMENT_PROVIDERS

    def checkout_start(self, *, donation: Donation, base_url: str) -> str:
        """Return the URL the reader goes to next (a hosted checkout, or Jauge's own page)."""
        raise NotImplementedError

    def verify(self, request) -> None:
        raise SignatureError(f"{self.identifier} receives no webhooks of its own")

    def parse(self, body: bytes) -> NormalizedEvent:
        raise PayloadError("body", f"{self.identifier} receives no webhooks of its own")
