"""camt.053 on real files from banks and other projects (shared fixtures) and on our own small ones."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from campaigns.bank import camt053
from campaigns.bank.records import StatementError
from tests.fixtures_dir import fixture_path, statement_bytes

DATA = Path(__file__).parent / "data" / "bank"


def _parse(name: str):
    records = list(camt053.parse(statement_bytes("camt053", name)))
    for record in records:
        assert isinstance(record.amount, Decimal) and record.amount.as_tuple().exponent == -2
    return records


def _credits(records):
    return [r for r in records if r.amount > 0]


def test_it_reads_the_nl_testbank_file_and_splits_the_returned_batch():
    records = _parse("camt053_v02_oca_nl_testbank.xml")
    assert [r.amount for r in records] == [Decimal("-754.25"), Decimal("-564.05"), Decimal("-100.00"),
                                           Decimal("1405.31")]
    assert {r.account for r in records} == {"NL77ABNA0574908765"}
    assert all(r.extra["reversal"] for r in records[1:3])  # RvslInd=true on the batch entry
    (credit,) = _credits(records)
    assert credit.booking_date == date(2014, 1, 5) and credit.currency == "EUR"
    assert credit.payer_name == "3rd party Media" and credit.payer_iban == "NL69ABNA0522123643"
    assert "#RD PARTY MEDIA CUSNO 90782 4210773" in credit.text


def test_it_splits_a_postfinance_batch_only_because_its_parts_sum_to_the_entry():
    records = _parse("camt053_v04_oca_ch_postfinance_batch.xml")
    assert [r.amount for r in records] == [Decimal("2187.00"), Decimal("1296.00")]
    assert sum(r.amount for r in records) == Decimal("3483.00")
    assert [r.payer_iban for r in records] == ["CH2222000000123456789", "CH3333000000123456789"]
    assert records[0].payer_name == "Banque Cantonale Vaudoise"
    assert "302388292000011111111111111" in records[0].text
    assert "302388292000022222222222222" in records[1].text
    assert "CRÉDIT GROUPÉ BVR TRAITEMENT DU 22.03.2017" in records[0].text
    assert all(r.currency == "CHF" and r.booking_date == date(2017, 3, 22) for r in records)


def test_it_reads_the_vr_bank_file_as_pretix_does_and_ignores_notprovided():
    records = _parse("camt053_v02_pretix_de_vrbank_sepatools.xml")
    assert len(records) == 5  # 4 entries, the 6.00 batch split into 3.50 + 2.50
    assert sorted(r.amount for r in records if r.amount < 0) == [Decimal("-3.50"), Decimal("-3.00"),
                                                                  Decimal("-2.50"), Decimal("-2.00")]
    (credit,) = _credits(records)
    # pretix's own expected parse of this credit (src/tests/plugins/banktransfer/test_camt.py)
    assert (credit.amount, credit.booking_date, credit.bank_reference, credit.payer_name) == (
        Decimal("1.00"), date(2013, 12, 27), "2013122711085260000", "Testkonto Nummer 2")
    assert credit.texts[0] == "R CKBUCHUNG"
    assert credit.extra["payer_account"] == "740618130100033626"  # a BBAN, not put in payer_iban
    assert not any("NOTPROVIDED" in r.text for r in records)


def test_it_reads_the_bundesbank_file_without_a_namespace():
    records = _parse("camt053_v08_pretix_de_bundesbank_nonamespace.xml")
    assert len(records) == 11
    credits = _credits(records)
    assert [c.amount for c in credits] == [Decimal(v) for v in ("100000.00", "145015.00", "50000.00", "80000.00",
                                                                  "100000.00")]
    assert sum(c.amount for c in credits) == -sum(r.amount for r in records if r.amount < 0) == Decimal("475015.00")
    assert all(c.booking_date == date(2024, 3, 13) for c in credits)
    assert credits[2].payer_name == "Testbank"  # v08: Dbtr/Pty/Nm
    assert "VWZ pacs008 RTGS nach DOTA" in credits[2].text
    last = credits[4]
    assert last.payer_name == "Deutsche Bundesbank / 22772 Hamburg" and last.payer_iban == "DE98200000000020002633"
    assert "Rückgabe Best. Scheck vom 28.02.2024 Scheck Nr. 135468" in last.text  # both Ustrd lines
    shared = [r for r in records if r.bank_reference == "047200003598/0002000001"]
    assert sorted(r.amount for r in shared) == [Decimal("-20000.00"), Decimal("-15.00")]  # entry amount wins


def test_it_reads_a_swiss_v08_export():
    (record,) = _parse("camt053_v08_ofxstatement_ch_sps_redacted.xml")
    assert (record.amount, record.currency, record.booking_date) == (Decimal("1284.30"), "CHF", date(2023, 1, 25))
    assert record.bank_reference == "8082230156M02SJ62/1010"
    assert record.account == "0035-2915203-10-000"
    assert record.payer_name == "PAYEE" and "PAYMENT INFO" in record.text
    assert record.extra["end_to_end_id"] == "9502830971"


def test_it_reads_dates_with_an_offset_and_amounts_without_decimals():
    records = _parse("camt053_v04_ofxstatement_ch_raiffeisen_redacted.xml")
    assert len(records) == 16
    (credit,) = _credits(records)
    assert (credit.amount, credit.booking_date) == (Decimal("368.00"), date(2017, 4, 11))
    assert credit.bank_reference == "211067161010000000024556150000"
    assert "Accredito" in credit.text
    assert -sum(r.amount for r in records if r.amount < 0) == Decimal("4047.85")
    assert Decimal("9433.31") + sum(r.amount for r in records) == Decimal("5753.46")  # balances reconcile


def test_it_agrees_with_genkgos_expected_parse():
    (record,) = _parse("camt053_v08_genkgo_synthetic.xml")
    expected = json.loads(fixture_path("statements", "camt053", "camt053_v08_genkgo_synthetic.expected.json")
                          .read_text())
    (entry,) = expected["getEntries"]
    assert record.amount * 100 == Decimal(entry["getAmount"]["getAmount"])
    assert record.currency == entry["getAmount"]["getCurrency"]["getCode"]
    assert record.bank_reference == entry["getAccountServicerReference"]
    assert record.account == entry["getRecord"]["getAccount"]["getIdentification"]
    # genkgo gives 2014-12-31T12:15Z for DtTm 2014-12-31T13:15:00+01:00: the bank's local date is the 31st
    assert record.booking_date == date(2014, 12, 31)
    assert entry["getBookingDate"]["0"].startswith("2014-12-31")
    detail = entry["getTransactionDetail"]
    assert detail["getRemittanceInformation"]["getCreditorReferenceInformation"]["getRef"] in record.texts
    assert record.extra["end_to_end_id"] == detail["getReference"]["getEndToEndId"]
    debtor = next(p for p in detail["getRelatedParties"] if p["getRelatedPartyType"]["__CLASS__"].endswith("Debtor"))
    assert record.payer_name == debtor["getRelatedPartyType"]["getName"] == "NAME NAME"
    assert record.payer_iban == debtor["getAccount"]["getIdentification"]
    assert record.amount == Decimal("8.85")  # the entry amount, not the nonsense 0 SEK detail


def test_it_keeps_identical_gifts_on_different_days_in_a_long_belgian_file():
    records = _parse("camt053_v02_subite_be_anonymised_268.xml")
    assert len(records) == 268
    credits = _credits(records)
    assert [(c.amount, c.booking_date) for c in credits] == [
        (Decimal("50000.00"), date(2024, 11, 29)), (Decimal("50000.00"), date(2024, 11, 21)),
        (Decimal("50000.00"), date(2024, 11, 12)), (Decimal("30000.00"), date(2024, 11, 5))]
    assert all(c.payer_name == "Stellar Ltd" and c.payer_iban == "BE91516952884376" for c in credits)
    assert credits[0].texts[0] == credits[1].texts[0] == "Transfer ref HBAVHC9717"
    assert credits[0].extra["end_to_end_id"] != credits[1].extra["end_to_end_id"]
    assert not any(r.bank_reference for r in records)  # this bank gives no AcctSvcrRef
    assert -sum(r.amount for r in records if r.amount < 0) == Decimal("151831.25")
    assert Decimal("59370.37") + sum(r.amount for r in records) == Decimal("87539.12")


# --- our own small file: each rule on one page -------------------------------------------------

def test_it_applies_every_entry_rule_to_a_small_file():
    records = list(camt053.parse((DATA / "camt053_v08_small.xml").read_bytes()))
    first, part1, part2, whole, returned, swiss = records  # the pending entry is not on the account yet
    assert first.booking_date == date(2026, 11, 27)  # DtTm's own local date, not converted
    assert first.value_date == date(2026, 11, 28)  # a date with an offset
    assert first.payer_name == "Marie Curie" and first.payer_iban == "FR7630004000031234567890143"
    assert first.texts == ("DON JAUGE jg-7k3 f9xa MERCI",)  # Ustrd lines joined, NOTPROVIDED dropped
    assert first.extra["end_to_end_id"] == ""
    assert (part1.amount, part1.payer_name, part1.bank_reference) == (Decimal("10.00"), "Albert Camus", "REF-B1")
    assert (part2.amount, part2.payer_name, part2.bank_reference) == (Decimal("20.00"), "Simone Veil",
                                                                       "REF-BATCH-OK")
    assert "<TxDtls" in part1.raw and "second part" not in part1.raw
    assert whole.amount == Decimal("40.00") and whole.texts == ("parts that", "do not add up")
    assert returned.amount == Decimal("-25.00") and returned.extra["reversal"] is True
    assert returned.bank_reference == first.bank_reference == "REF-A"  # banks reuse references
    assert (swiss.account, swiss.currency, swiss.amount) == ("0035-2915203-10-000", "CHF", Decimal("5.00"))
    assert [r.line for r in records] == [10, 34, 40, 48, 59, 78]


def test_it_yields_entries_while_reading_so_a_bad_entry_late_in_the_file_stops_it_there():
    data = (DATA / "camt053_v08_small.xml").read_bytes()
    data = data.replace(b'<Amt Ccy="CHF">5</Amt>', b'<Amt Ccy="CHF">5,00</Amt>')
    records = camt053.parse(data)
    assert next(records).amount == Decimal("25.00")
    with pytest.raises(StatementError, match=r"unreadable amount '5,00'") as error:
        list(records)
    assert error.value.line == 79


@pytest.mark.parametrize(("old", "new", "reason", "line"), [
    (b"<CdtDbtInd>CRDT</CdtDbtInd>\n        <Sts><Cd>BOOK</Cd></Sts>\n        <BookgDt><DtTm>",
     b"<CdtDbtInd>CREDIT</CdtDbtInd>\n        <Sts><Cd>BOOK</Cd></Sts>\n        <BookgDt><DtTm>",
     "neither CRDT nor DBIT", 12),
    (b"<DtTm>2026-11-27T23:30:00-05:00</DtTm>", b"<DtTm>27/11/2026</DtTm>", "unreadable date", 14),
    (b"<DtTm>2026-11-27T23:30:00-05:00</DtTm>", b"<DtTm>2026-02-30T10:00:00</DtTm>", "not a valid date", 14),
    (b'<Amt Ccy="EUR">25.00</Amt>\n        <CdtDbtInd>CRDT', b'<Amt Ccy="EUR">25.001</Amt>\n        <CdtDbtInd>CRDT',
     "fraction of a cent", 11),
])
def test_it_refuses_an_unreadable_entry_naming_its_line(old, new, reason, line):
    data = (DATA / "camt053_v08_small.xml").read_bytes()
    assert old in data
    with pytest.raises(StatementError, match=reason) as error:
        list(camt053.parse(data.replace(old, new, 1)))
    assert error.value.line == line
