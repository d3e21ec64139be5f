"""What the tax-receipt tests share: the organisation's settings and gifts with an address."""

from __future__ import annotations

import io
import uuid
from datetime import datetime

from django.utils import timezone
from pypdf import PdfReader

from campaigns.models import Campaign, Donation, TaxReceipt, TaxReceiptSequence, TaxReceiptSettings
from campaigns.services import ledger


def org_enable(**fields) -> TaxReceiptSettings:
    values = {
        "enabled": True, "legal_name": "Le Journal Indépendant SAS", "address": "12 rue des Imprimeurs\n75011 Paris",
        "siren": "123456789", "purpose": "Information politique et générale",
        "organisation_type": "Entreprise de presse (article 39 bis A du CGI)",
        "legal_basis": TaxReceiptSettings.LegalBasis.ART_200_PRESS, "reduction_rate_percent": 66,
        "signatory": "Camille Martin, directrice de la publication", **fields,
    }
    org, _ = TaxReceiptSettings.objects.update_or_create(pk=1, defaults=values)
    return org


def local(year: int, month: int = 6, day: int = 15) -> datetime:
    return datetime(year, month, day, 12, 0, tzinfo=timezone.get_current_timezone())


def gift(campaign: Campaign, amount_minor: int, *, at: datetime | None = None, monthly: bool = False,
         email: str = "marie@example.org", name: str = "Marie Curie", address: bool = True,
         source: str = Donation.Source.GENERIC) -> Donation:
    """A confirmed gift (a provider's, by default) with the donor's postal address."""
    at = at or timezone.now()
    fields = {"donor_address": "3 rue de l'Estrapade", "donor_postal_code": "75005", "donor_city": "Paris"} \
        if address else {}
    donation, _ = ledger.donation_record(
        campaign=campaign, source=source, external_id=f"cheque:{uuid.uuid4().hex}"
        if source == Donation.Source.MANUAL else uuid.uuid4().hex,
        amount_minor=amount_minor, at=at, occurred_at=at, donor_email=email, donor_name=name,
        frequency=Donation.Frequency.MONTHLY if monthly else Donation.Frequency.ONCE, **fields)
    return donation


def numbers(year: int) -> list[int]:
    return sorted(TaxReceipt.objects.filter(year=year).values_list("sequence", flat=True))


def assert_gapless(year: int) -> None:
    """The numbers of `year` are exactly 1..N, N being the counter, each once."""
    counter = TaxReceiptSequence.objects.filter(year=year).values_list("last_number", flat=True).first() or 0
    assert numbers(year) == list(range(1, counter + 1))
    assert all(r.number == f"{year}-{r.sequence:06d}" for r in TaxReceipt.objects.filter(year=year))


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF")
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
