"""Payment providers, one module each, registered by identifier."""

from __future__ import annotations

from campaigns.providers.base import PaymentProvider
from campaigns.providers.generic import GenericProvider

PROVIDERS: dict[str, PaymentProvider] = {
    provider.identifier: provider for provider in (GenericProvider(),)
}


def get_provider(identifier: str) -> PaymentProvider | None:
    return PROVIDERS.get(identifier)
