"""Payment providers, in two registries keyed by identifier.

- `WEBHOOK_SOURCES`: the `/hooks/<identifier>/` endpoints (verify, parse: pure). Any other
  identifier is a 404.
- `CHECKOUTS`: what a reader can pay with on the donation page (label, start); the
  `PAYMENT_PROVIDERS` setting picks and orders the ones offered.

Stripe is in both; the sandbox posts its decisions to the generic webhook, bank transfers come
back through the statement import.
"""

from __future__ import annotations

from django.conf import settings

from campaigns.providers.bank_transfer import BankTransferCheckout
from campaigns.providers.base import WebhookSource
from campaigns.providers.checkout import Checkout
from campaigns.providers.generic import GenericWebhooks
from campaigns.providers.sandbox import SandboxCheckout
from campaigns.providers.stripe import StripeCheckout, StripeWebhooks

WEBHOOK_SOURCES: dict[str, WebhookSource] = {
    source.identifier: source for source in (GenericWebhooks(), StripeWebhooks())
}
CHECKOUTS: dict[str, Checkout] = {
    checkout.identifier: checkout for checkout in (SandboxCheckout(), StripeCheckout(), BankTransferCheckout())
}


def checkouts_available() -> list[Checkout]:
    """The checkouts the donation form offers now, in the order PAYMENT_PROVIDERS lists them."""
    listed = [CHECKOUTS.get(identifier) for identifier in settings.PAYMENT_PROVIDERS]
    return [checkout for checkout in listed if checkout is not None and checkout.is_available()]
