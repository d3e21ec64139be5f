"""Payment providers, one module each, registered by identifier."""

from __future__ import annotations

from campaigns.providers.bank_transfer import BankTransferProvider
from campaigns.providers.base import PaymentProvider
from campaigns.providers.generic import GenericProvider
from campaigns.providers.sandbox import SandboxProvider
from campaigns.providers.stripe import StripeProvider

PROVIDERS: dict[str, PaymentProvider] = {
    provider.identifier: provider
    for provider in (GenericProvider(), SandboxProvider(), StripeProvider(), BankTransferProvider())
}


def get_provider(identifier: str) -> PaymentProvider | None:
    return PROVIDERS.get(identifier)
