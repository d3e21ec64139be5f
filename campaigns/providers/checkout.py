"""Checkouts: what a reader can pay with from the donation page. Each turns a pledge into the
URL the reader goes to next. Money comes back another way: a webhook source (providers/base.py)
or the bank-statement import, so a checkout has no webhook of its own unless it is also one.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings

from campaigns.models import Donation


class CheckoutUnavailable(Exception):
    """The provider cannot start a checkout now (outage, configuration): the pledge stays pending."""


class Checkout:
    # The donation form's `provider` value (public contract).
    identifier: ClassVar[str]
    # The pledge's Donation.source.
    source: ClassVar[str]
    # What the donation form shows (a lazy translation).
    label: ClassVar[str]
    supports_monthly: ClassVar[bool] = True

    def is_available(self) -> bool:
        return self.identifier in settings.PAYMENT_PROVIDERS

    def start(self, *, donation: Donation, base_url: str) -> str:
        """Return the URL the reader goes to next (a hosted checkout, or Jauge's own page)."""
        raise NotImplementedError
