"""MT940 on real files (shared fixtures, with wolph/mt940's own expected dumps) and on a small own file."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from campaigns.bank import mt940
from campaigns.bank.records import StatementError
from tests.fixtures_dir import fixture_path, statement_bytes

DATA = Path(__file__).parent / "data" / "bank"


class _DumpLoader(yaml.SafeLoader):
    """Reads wolph/mt940's PyYAML object dumps as plain data, executing nothing."""


def _python_tag(loader: _DumpLoader, suffix: str, node: yaml.Node):
    if suffix == "apply:decimal.Decimal":
        return Decimal(loader.construct_sequence(node)[0])
    if suffix == "apply:mt940.models.Date":
        state = loader.construct_sequence(node)[0]  # pickled date: year (2 bytes), month, day
        return datetime.date(state[0] * 256 + state[1], state[2], state[3])
    return None  # compiled patterns and the like


def _python_object(loader: _DumpLoader, suffix: str, node: yaml.Node):
    data: dict = {}
    yield data  # first, so that the transactions' back-references to their statement resolve
    if isinstance(node, yaml.MappingNode):
        data.update(loader.construct_mapping(node))


_DumpLoader.add_multi_constructor("tag:yaml.org,2002:python/object/", _python_tag)
_DumpLoader.add_multi_constructor("tag:yaml.org,2002:python/object:", _python_object)


def _expected(name: str) -> list[dict]:
    dump = yaml.load(fixture_path("statements", "mt940", name).read_text(), Loader=_DumpLoader)  # noqa: S506
    return [transaction["data"] for transaction in dump["transactions"]]


def _parse(name: str):
    records = list(mt940.parse(statement_bytes("mt940", name)))
    for record in records:
        assert isinstance(record.amount, Decimal) and record.amount.as_tuple().exponent == -2
    return records


def test_it_rejoins_ings_broken_wraps_that_the_library_alone_cannot_read():
    records = _parse("mt940_oca_nl_ing.940")
    assert len(records) == 8
    assert {r.account for r in records} == {"NL77INGB0574908765EUR"}
    credits = [r for r in records if r.amount > 0]
    assert [c.amount for c in credits] == [Decimal("1.56"), Decimal("1.57"), Decimal("1.45"), Decimal("32.00")]
    assert sum(c.amount for c in credits) == Decimal("36.58")  # the /SUM/ trailer
    assert -sum(r.amount for r in records if r.amount < 0) == Decimal("134.46")
    first = records[0]  # OCA's own expectation for this transaction
    assert (first.payer_iban, first.amount, first.value_date) == ("NL32INGB0000012345", Decimal("1.56"),
                                                                  datetime.date(2014, 2, 20))
    assert first.extra["end_to_end_id"] == "EV12341REP1231456T1234"
    assert first.bank_reference == "00000000001005"  # wrapped after 11 digits in the file
    assert "EV10001REP1000000T1000" in first.texts
    returned = records[2]
    assert returned.payer_name == "J.Janssen" and "Factuurnr 123456 Klantnr 00123" in returned.texts
    assert "CONTRIBUTIE FEB 2014" in records[5].texts  # "/REMI/USTD//CO" + "NTRIBUTIE FEB 2014/"
    assert "9001123412341234" in credits[3].texts
    assert "/SUM/" not in records[-1].text  # the statement trailer is not pinned on the last movement


def test_it_agrees_with_wolphs_expected_parse_of_the_betterplace_file():
    records = _parse("mt940_wolph_betterplace_de_sepa.sta")
    expected = _expected("mt940_wolph_betterplace_de_sepa.expected.yml")
    assert len(records) == len(expected) == 11
    for record, data in zip(records, expected, strict=True):
        assert record.amount == data["amount"]["amount"]
        assert record.value_date == data["date"] and record.booking_date == data["entry_date"]
        assert record.bank_reference == (data["bank_reference"] or "")
        if data.get("purpose"):
            assert data["purpose"] in record.texts
        if data.get("applicant_iban"):
            assert record.payer_iban == data["applicant_iban"]
        assert record.extra["reversal"] is False  # "CR"/"DR": a mark and the funds code R, not a reversal
    credits = [r for r in records if r.amount > 0]
    assert sum(c.amount for c in credits) == Decimal("1430745.72")
    karl = credits[0]
    assert karl.payer_name == "KARL KAUFMANN" and karl.payer_iban == "DE14508800500194785000"
    twins = [c for c in credits if c.amount == Decimal("154551.93")]
    assert [t.texts[0] for t in twins] == ["Strukturierter Verwendungszweck 30030004 DE",
                                           "Strukturierter Verwendungszweck 50050004 DE"]
    assert any(c.bank_reference == "R724710351063405" and c.amount == Decimal("915311.55") for c in credits)


def test_it_agrees_with_wolphs_expected_parse_of_the_postfinance_file():
    records = _parse("mt940_wolph_jejik_ch_postfinance.sta")
    expected = _expected("mt940_wolph_jejik_ch_postfinance.expected.yml")
    assert [r.amount for r in records] == [data["amount"]["amount"] for data in expected] == [
        Decimal("79.70"), Decimal("149.50"), Decimal("-79.90"), Decimal("10.10")]
    assert [r.value_date for r in records] == [data["date"] for data in expected]
    assert {r.currency for r in records} == {"CHF"}
    assert "MITTEILUNGEN: RECHNUNG XXXXXXXXXXXX" in records[0].text
    assert "JANE DOE EXAMPLESTRASSE 10 1234" in records[0].text  # the continuation's leading blank kept
    assert "XXXXXXXXSTRASSE 111" in records[2].text  # a 65-character line cut mid-word, rejoined
    assert records[3].texts[0] == "EINZAHLUNGSSCHEIN" and records[3].booking_date == datetime.date(2013, 12, 18)


def test_it_reads_asn_banks_swift_envelopes_and_dialect():
    records = _parse("mt940_wolph_asnb_nl_swiftblocks.txt")
    assert [r.amount for r in records] == [Decimal(v) for v in ("-65.00", "1000.00", "-801.55", "-1.65", "828.72",
                                                                  "-1000.00", "1000.18", "-903.76")]
    assert Decimal("444.29") + sum(r.amount for r in records) == Decimal("501.23")
    gift = records[1]
    assert (gift.booking_date, gift.payer_name, gift.payer_iban) == (
        datetime.date(2020, 1, 5), "paulissen g j l m", "NL56ASNB9999999999")
    assert "INTERNE OVERBOEKING VIA MOBIEL" in gift.text
    dividend = records[4]
    assert dividend.payer_name == "transfer solutions bv" and dividend.payer_iban == "NL25INGB9999999999"
    assert "Transfer Solutions BV-DIVIDEND 28/01/2020" in dividend.text  # "…-Transfer S" / "olutions BV…"
    assert records[0].account == "NL81ASNB9999999999"


# --- our own small file -------------------------------------------------------------------------

def test_it_signs_reversals_keeps_long_details_and_rejoins_wraps_in_a_small_file():
    gift, reversed_credit, reversed_debit, long_label, wrapped = mt940.parse((DATA / "mt940_small.sta").read_bytes())
    assert (gift.amount, gift.payer_name, gift.payer_iban) == (Decimal("25.00"), "Marie Curie",
                                                               "FR7630004000031234567890143")
    assert gift.texts[0] == "DON JAUGE jg-7k3f9xa MERCI" and gift.extra["end_to_end_id"] == ""
    assert gift.line == 7 and gift.bank_reference == "BANKREF-1"
    assert reversed_credit.amount == Decimal("-25.00") and reversed_credit.extra["reversal"] is True  # RC
    assert reversed_debit.amount == Decimal("7.50") and reversed_debit.extra["reversal"] is True  # RD
    assert long_label.amount == Decimal("12.00")
    assert long_label.texts[0].endswith("LONG LABEL 15 THE END: JG-7K3F9XA")  # past 9 × 65 characters
    assert "STATEMENT INFORMATION" not in long_label.text
    assert wrapped.bank_reference == "BANKREF-5"
    assert wrapped.texts[0] == "VIREMENT RECU DE JEANNE MARTIN POUR SOUTENIR LE JOURNAL REF JG-7K3F9XA MERCI"


@pytest.mark.parametrize(("old", "new", "reason", "line"), [
    (":61:2611291129RD7,5NCHG", ":61:2611291129RD7,5,1NCHG", "unreadable amount", 12),
    (":61:2611291129RD7,5NCHG", ":61:2611291129XX7,5NCHG", "unreadable :61:", 12),
    (":61:2611291129RD7,5NCHG", ":61:2611321129RD7,5NCHG", "unreadable value date '261132'", 12),
    (":61:2611291129RD7,5NCHG", ":61:2611291129RD7,555NCHG", "fraction of a cent", 12),
    (":28C:0000\n1/001", ":28C:ABCD", "unreadable MT940 statement", 2),
    (":20:JAUGE-TEST-1", "STRAY TEXT\n:20:JAUGE-TEST-1", "outside any MT940 tag", 2),
])
def test_it_refuses_a_bad_statement_naming_its_line(old, new, reason, line):
    text = (DATA / "mt940_small.sta").read_text()
    assert old in text
    with pytest.raises(StatementError, match=reason) as error:
        list(mt940.parse(text.replace(old, new, 1).encode()))
    assert error.value.line == line


def test_a_file_without_mt940_tags_is_refused():
    with pytest.raises(StatementError, match="not an MT940 statement") as error:
        list(mt940.parse(b"{1:F01ABCDEFGHXXX0000000000}{4:\n-}"))
    assert error.value.line == 1
