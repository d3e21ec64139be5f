"""The sandbox: a built-in hosted test checkout, the default for `make run` and the tests.

Its decision travels the production path: a Celery task posts a real signed webhook to
/hooks/generic/ (PUBLIC_URL), so a demo exercises verification, storage and the worker.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models import Donation
from campaigns.providers.checkout import Checkout

DECISIONS = {"confirm": "donation.succeeded", "decline": "donation.failed"}


class SandboxCheckout(Checkout):
    identifier = "sandbox"
    source = Donation.Source.SANDBOX
    label = _("Paiement de test (bac à sable)")

    def is_available(self) -> bool:
        # Test money must never reach a real total: no sandbox unless DEBUG or JAUGE_SANDBOX.
        return settings.SANDBOX_ENABLED and super().is_available()

    def start(self, *, donation: Donation, base_url: str) -> str:
        return reverse("sandbox-checkout", kwargs={"slug": donation.campaign.slug, "reference": donation.reference})


def sandbox_event_body(*, donation: Donation, decision: str) -> bytes:
    """The generic webhook a payment processor would send for this decision (contract format).

    The event id is derived from the pledge and the decision: a double click or a task retry
    sends the same event, which the intake stores once.
    """
    payload = {
        "id": f"sandbox_{donation.reference}_{decision}",
        "type": DECISIONS[decision],
        "data": {
            "donation_id": donation.reference,
            "reference": donation.reference,
            "campaign": donation.campaign.slug,
            "amount_minor": donation.amount_minor,
            "currency": donation.currency,
            "donor": {"name": donation.donor_name, "email": donation.donor_email, "anonymous": donation.anonymous},
            "occurred_at": timezone.now().isoformat(),
        },
    }
    return json.dumps(payload).encode()


def sandbox_enabled() -> bool:
    return _SANDBOX.is_available()


def test_mode_shown() -> bool:
    """A site that takes fake money outside development says so on every page and banner."""
    return not settings.DEBUG and sandbox_enabled()


_SANDBOX = SandboxCheckout()
