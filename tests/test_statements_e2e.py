"""Done when: a transfer pledge made on the donation page, then a statement line carrying its
reference as a bank mangles it, confirms it through a real worker and moves the banner."""

from __future__ import annotations

import pytest
import segno.helpers
from django.test import Client

from campaigns.models import Donation, StatementImport, StatementLine
from campaigns.providers.bank_transfer import epc_qr_arguments
from campaigns.services import statements
from tests.statement_files import Entry, camt053
from tests.worker import wait_until

IBAN = "FR7630006000011234567890189"


@pytest.fixture
def _bank_settings(settings):
    settings.DONATE_RATE_LIMIT = "1000/m"
    settings.PAYMENT_PROVIDERS = ["bank_transfer"]
    settings.BANK_TRANSFER_IBAN = IBAN
    settings.BANK_TRANSFER_BIC = "AGRIFRPP"
    settings.BANK_TRANSFER_HOLDER = "Association des lecteurs"


def _progress(client: Client) -> dict:
    return client.get("/api/campaigns/test-campaign/progress.json").json()


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.usefixtures("_bank_settings")
def test_a_transfer_pledge_is_confirmed_by_its_statement_line_through_the_worker(worker, campaign):
    client = Client()
    response = client.post("/c/test-campaign/donate/", {
        "amount": "42,50", "frequency": "once", "name": "Marie Curie", "email": "marie@example.org",
        "provider": "bank_transfer",
    })
    assert response.status_code == 302
    pledge = Donation.objects.get()
    assert _progress(client)["total_minor"] == 0

    # As a bank prints it: lower case, spaces, the reference cut by a line break.
    code = pledge.reference.lower().replace("-", " ")
    label = f"vir sepa m curie {code[:6]}\n{code[6:]}"
    result = statements.statement_import(
        data=camt053([Entry("42.50", label, payer="MME MARIE CURIE"), Entry("3.10", "FRAIS", credit=False)]),
        file_name="releve.xml", format="camt053",
    )
    # Stored and committed; the worker (enqueued on commit) does the matching.
    wait_until(lambda: StatementImport.objects.get(pk=result.statement_import.pk).status == "done",
               timeout=60, message="the worker to match the import")
    pledge.refresh_from_db()
    assert pledge.status == Donation.Status.CONFIRMED
    line = StatementLine.objects.get(direction="credit")
    assert (line.outcome, line.donation_id) == ("matched", pledge.pk)
    wait_until(lambda: _progress(client)["total_minor"] == 4250, timeout=30, message="the banner to move")
    assert _progress(client)["donations"] == 1


@pytest.mark.usefixtures("_bank_settings")
def test_the_epc_qr_and_the_instructions_carry_the_reference_in_the_remittance_field(campaign):
    client = Client()
    client.post("/c/test-campaign/donate/", {"amount": "40", "frequency": "once", "name": "M", "email": "m@e.org",
                                             "provider": "bank_transfer"})
    pledge = Donation.objects.get()
    fields = segno.helpers._make_epc_qr_data(**epc_qr_arguments(donation=pledge)).decode().split("\n")
    # EPC069-12: field 10 is the structured creditor reference (empty), 11 the unstructured
    # remittance text the statement import searches.
    assert fields[9] == "" and fields[10] == pledge.reference
    html = client.get(f"/c/test-campaign/merci/{pledge.reference}/").content.decode()
    assert "Libellé à indiquer (obligatoire)" in html and pledge.reference in html
