"""Bank transfer: the reader transfers the amount with the pledge's reference in the label.

The pledge stays pending (its amount shows as pending money on the banner) until the
statement import matches the reference; an EPC "BCD" QR code lets banking apps pre-fill it.
"""

from __future__ import annotations

import segno.helpers
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from campaigns import money
from campaigns.models import Donation
from campaigns.providers.checkout import Checkout


class BankTransferCheckout(Checkout):
    identifier = "bank_transfer"
    source = Donation.Source.BANK
    label = _("Virement bancaire")
    # A monthly gift by transfer is a standing order the reader sets up at their bank.
    supports_monthly = False

    def is_available(self) -> bool:
        return super().is_available() and bool(settings.BANK_TRANSFER_IBAN)

    def start(self, *, donation: Donation, base_url: str) -> str:
        return reverse("donate-thanks", kwargs={"slug": donation.campaign.slug, "reference": donation.reference})


def bank_details() -> dict[str, str]:
    iban = settings.BANK_TRANSFER_IBAN
    return {
        "iban": iban,
        "iban_display": " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)),
        "bic": settings.BANK_TRANSFER_BIC,
        "holder": settings.BANK_TRANSFER_HOLDER,
    }


def epc_qr_arguments(*, donation: Donation) -> dict | None:
    """What the SEPA payment QR code (EPC069-12 "BCD") carries; None where EPC does not apply."""
    if donation.currency != "EUR" or not settings.BANK_TRANSFER_IBAN:
        return None
    return {
        "name": settings.BANK_TRANSFER_HOLDER[:70],
        "iban": settings.BANK_TRANSFER_IBAN,
        "amount": money.to_decimal(donation.amount_minor, donation.currency),
        # Unstructured remittance text: what the statement import looks for.
        "text": donation.reference,
        "bic": settings.BANK_TRANSFER_BIC or None,
    }


def epc_qr_svg(*, donation: Donation) -> str | None:
    """The SEPA payment QR code as inline SVG, for banking apps to pre-fill the transfer."""
    arguments = epc_qr_arguments(donation=donation)
    if arguments is None:
        return None
    qr = segno.helpers.make_epc_qr(**arguments)
    return qr.svg_inline(scale=4, title=str(_("QR code de virement SEPA")))
