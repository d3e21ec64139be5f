"""CSV export of the filtered donations: streamed, UTF-8 with BOM, `;`-separated for French Excel."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import AuditLog, CampaignTotal, Donation
from campaigns.services import ledger
from tests import factories
from tests.staff_world import staff_world


@pytest.fixture
def finance(db) -> Client:
    client = Client()
    client.force_login(staff_world()["finance"])
    return client


def _rows(response) -> list[dict]:
    assert response.streaming
    raw = b"".join(response.streaming_content)
    assert raw.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))


def test_export_streams_the_filtered_donations_as_excel_ready_csv(campaign, finance):
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cheque:1",
                           amount_minor=2550, donor_name="Élodie Œuvray; «guillemets»", donor_email="e@example.org")
    refunded, _ = ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cash:2",
                                         amount_minor=1000)
    factories.refund(refunded.pk, amount_minor=400)
    ledger.donation_create(campaign=campaign, source=Donation.Source.BANK, external_id="bank:3", amount_minor=9900,
                           currency="EUR")

    response = finance.get("/admin/campaigns/donation/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = _rows(response)
    assert len(rows) == 3
    first = rows[0]
    assert (first["nom"], first["montant"], first["montant_centimes"], first["net_centimes"]) == (
        "Élodie Œuvray; «guillemets»", "25,50", "2550", "2550")
    assert (rows[1]["rembourse_centimes"], rows[1]["net_centimes"]) == ("400", "600")
    assert (rows[2]["statut"], rows[2]["net_centimes"]) == ("pending", "0")
    created = Donation.objects.get(external_id="cheque:1").created_at
    assert first["cree_le"] == timezone.localtime(created).strftime("%Y-%m-%d %H:%M:%S")  # Paris time
    assert first["date_du_don"] == ""

    only_bank = _rows(finance.get("/admin/campaigns/donation/export.csv", {"source__exact": "bank"}))
    assert [row["identifiant_externe"] for row in only_bank] == ["bank:3"]
    searched = _rows(finance.get("/admin/campaigns/donation/export.csv", {"q": "Élodie"}))
    assert [row["identifiant_externe"] for row in searched] == ["cheque:1"]
    assert AuditLog.objects.filter(action="export").count() == 3


def test_a_donor_name_that_looks_like_a_formula_is_exported_as_text(campaign, finance):
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cash:1",
                           amount_minor=100, donor_name='=HYPERLINK("http://evil.example","clic")')
    rows = _rows(finance.get("/admin/campaigns/donation/export.csv"))
    assert rows[0]["nom"] == '\'=HYPERLINK("http://evil.example","clic")'


def test_the_donation_list_links_to_the_export_with_its_filters(campaign, finance):
    page = finance.get("/admin/campaigns/donation/", {"status__exact": "confirmed"}).content.decode()
    assert 'href="/admin/campaigns/donation/export.csv?status__exact=confirmed"' in page


def test_an_unknown_filter_exports_nothing_and_says_so(campaign, finance):
    response = finance.get("/admin/campaigns/donation/export.csv", {"nonsense__exact": "1"})
    assert response.status_code in (302, 400)
    assert not AuditLog.objects.exists()


def test_a_matched_gift_exports_the_sponsors_money_apart_from_the_donors(campaign, finance):
    # Finance checks the export against the campaign's total: the sponsor's match is part of it,
    # in its own column, never in the donor's amount or net (a tax receipt's money).
    from tests.test_matching import _match

    _match(campaign, ratio=1, cap_minor=3000)
    matched, _ = ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cheque:1",
                                        amount_minor=2000)
    ledger.donation_record(campaign=campaign, source=Donation.Source.MANUAL, external_id="cheque:2",
                           amount_minor=2000)  # only 1,000 left of the cap
    factories.refund(matched.pk, amount_minor=500)
    rows = _rows(finance.get("/admin/campaigns/donation/export.csv"))
    assert [(r["montant_centimes"], r["net_centimes"], r["abondement_centimes"]) for r in rows] == [
        ("2000", "1500", "1500"), ("2000", "2000", "1000")]
    total = CampaignTotal.objects.get(campaign=campaign).total_minor
    assert sum(int(r["net_centimes"]) + int(r["abondement_centimes"]) for r in rows) == total
