"""Bank CSV exports through profiles: the three real French files (shared fixtures) and our own."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from campaigns.bank import csv as bank_csv
from campaigns.bank.csv import PROFILES, CsvProfile
from campaigns.bank.records import StatementError
from tests.fixtures_dir import statement_bytes

DATA = Path(__file__).parent / "data" / "bank"
DOT_DECIMAL = CsvProfile(name="dot-decimal", decimal_separator=".", amount_column="Montant",
                         label_columns=["Libellé"], encoding="iso-8859-15")


def _parse(data: bytes, profile) -> list:
    records = list(bank_csv.parse(data, profile=profile))
    for record in records:
        assert isinstance(record.amount, Decimal) and record.amount.as_tuple().exponent == -2
    return records


@pytest.mark.parametrize("profile", ["fr-creditmutuel", "fr-generic"])
def test_it_reads_the_credit_mutuel_latin9_export(profile):
    records = _parse(statement_bytes("csv", "csv_fr_creditmutuel_ccm_latin9.csv"), profile)
    assert len(records) == 24
    credits = [(r.amount, r.booking_date, r.texts[0]) for r in records if r.amount > 0]
    assert credits == [
        (Decimal("2950.00"), date(2025, 11, 5), "VIR GAMMA CONSULTING PP000000000004"),
        (Decimal("9.00"), date(2025, 11, 15), "VIR INST DELTA MUTUELLE REMBOURSEMENT SANTE 0000000000000000002"),
        (Decimal("520.00"), date(2025, 11, 18), "VIR DE MLE JEANNE MARTIN MLE JEANNE MARTIN"),
    ]
    assert records[0].amount == Decimal("-26.99")  # a negative figure in the Débit column
    # The running balance column agrees: 8350.59 after the first row, 6591.46 after the last.
    assert Decimal("8350.59") + sum(r.amount for r in records[1:]) == Decimal("6591.46")
    assert any("N°001" in r.text for r in records)  # the Latin-9 degree sign decoded
    if profile == "fr-creditmutuel":
        assert sum(1 for r in records if r.value_date != r.booking_date) == 3
    assert records[5].line == 7 and records[5].raw.startswith("05/11/2025;05/11/2025;;2950,00;")


def test_it_reads_the_societe_generale_layout_after_its_preamble():
    gift, fee = _parse(statement_bytes("csv", "csv_fr_societegenerale_reckon.csv"), "fr-societegenerale")
    assert (gift.amount, gift.booking_date, gift.currency) == (Decimal("50.00"), date(2016, 2, 19), "EUR")
    assert gift.payer_name == "Francois"
    assert "REF: 123457891234567894561231" in gift.text and gift.text.startswith("VIR RECU 508160 VIR RECU")
    assert (fee.amount, fee.booking_date) == (Decimal("-8.10"), date(2016, 2, 18))
    assert gift.line == 5


def test_it_reads_a_headerless_export_by_column_numbers():
    records = _parse(statement_bytes("csv", "csv_fr_headerless_reckon.csv"), "fr-headerless")
    assert len(records) == 9 and not [r for r in records if r.amount > 0]
    assert records[0].amount == Decimal("-10.00") and records[2].amount == Decimal("-105.90")
    assert {r.account for r in records} == {"01234567890"}
    assert records[0].bank_reference == "0000037" and records[0].booking_date == date(2014, 1, 22)


def test_a_utf8_export_with_a_bom_positive_debits_and_thousands_separators():
    profile = CsvProfile(name="bom", encoding="utf-8-sig", thousands_separator=" ", debit_column="Débit",
                         credit_column="Crédit", label_columns=["Libellé"])
    gift, bill, second = _parse((DATA / "csv_fr_utf8_bom.csv").read_bytes(), profile)
    assert gift.amount == Decimal("1234.56") and gift.line == 2
    assert gift.texts == ("VIR SEPA MARIE CURIE; DON JAUGE jg-7k3 f9xa",)  # quoted ; and line break
    assert bill.amount == Decimal("-42.10") and bill.line == 4  # a positive figure in Débit is money out
    assert second.line == 6  # the blank line is skipped, line numbers stay the file's
    with pytest.raises(StatementError, match="unreadable amount '1 234,56'") as error:
        _parse((DATA / "csv_fr_utf8_bom.csv").read_bytes(), "fr-generic")  # no thousands separator there
    assert error.value.line == 2


def test_an_inverted_sign_convention_turns_card_exports_around():
    data = "Date;Libellé;Montant\n28/11/2026;ACHAT;12,50\n29/11/2026;REMBOURSEMENT;-3,00\n".encode()
    profile = CsvProfile(amount_column="Montant", label_columns=["Libellé"], sign_convention="inverted")
    assert [r.amount for r in _parse(data, profile)] == [Decimal("-12.50"), Decimal("3.00")]


def test_profiles_survive_a_json_round_trip_as_the_database_keeps_them():
    for name, profile in PROFILES.items():
        stored = json.loads(json.dumps(profile.to_dict()))
        assert CsvProfile.from_dict(stored) == profile, name
    data = statement_bytes("csv", "csv_fr_headerless_reckon.csv")
    assert len(_parse(data, PROFILES["fr-headerless"].to_dict())) == 9


@pytest.mark.parametrize(("settings", "reason"), [
    ({"colour": "blue"}, "unknown CSV profile settings: colour"),
    ({"amount_column": None}, "either an amount column or debit and credit"),
    ({"amount_column": "Montant", "debit_column": "Débit"}, "either an amount column"),
    ({"amount_column": None, "debit_column": "Débit"}, "both a debit and a credit"),
    ({"amount_column": "Montant", "encoding": "klingon-8"}, "unknown encoding"),
    ({"amount_column": "Montant", "decimal_separator": ";"}, "decimal separator"),
    ({"amount_column": "Montant", "thousands_separator": ","}, "thousands separator"),
    ({"amount_column": "Montant", "sign_convention": "maybe"}, "sign convention"),
    ({"amount_column": 4, "has_header": False}, "needs column numbers"),
    ({"amount_column": "Montant", "payer_regex": "(unclosed"}, "regular expression"),
])
def test_an_inconsistent_profile_is_refused_with_the_setting_named(settings, reason):
    with pytest.raises(StatementError, match=reason):
        CsvProfile.from_dict(settings)


@pytest.mark.parametrize(("data", "profile", "reason", "line"), [
    ((DATA / "csv_dot_decimal_bad_amount.csv").read_bytes(), DOT_DECIMAL, "unreadable amount '19.234,56'", 3),
    (b"Date;Libell\xe9;Montant\n28/11/2026;DON;25,00\n", DOT_DECIMAL, "unreadable amount '25,00'", 2),
    (b"Date;Libell\xe9;Montant\n28/11/2026;DON;\n", DOT_DECIMAL, "unreadable amount ''", 2),
    (b"Date;Libell\xe9;Montant\n2026-11-28;DON;25.00\n", DOT_DECIMAL, r"unreadable date '2026-11-28'", 2),
    (b"Date;Libell\xe9;Montant\n28/11/2026;DON;25.001\n", DOT_DECIMAL, "fraction of a cent", 2),
    (b"Date;Libell\xe9;Montant\n28/11/2026;DON\n", DOT_DECIMAL, "row has 2 columns", 2),
    (b"Date;Wording;Amount\n28/11/2026;DON;25.00\n", DOT_DECIMAL, "column 'Montant'", 1),
    ("Date;Libellé;Débit;Crédit\n28/11/2026;DON;1,00;2,00\n".encode(), "fr-generic", "exactly one", 2),
    ("Date;Libellé;Débit;Crédit\n28/11/2026;DON;;\n".encode(), "fr-generic", "exactly one", 2),
    ("Date;Libellé;Débit;Crédit\n28/11/2026;DON;;1 234,00\n".encode(), "fr-generic", "unreadable amount", 2),
    (b"Date;Libell\xc3\xa9;Montant\n28/11/2026;DON \xff;25.00\n",
     CsvProfile(amount_column="Montant", label_columns=["Libellé"], encoding="utf-8"), "not valid utf-8", 2),
])
def test_it_refuses_a_bad_row_naming_its_line(data, profile, reason, line):
    with pytest.raises(StatementError, match=reason) as error:
        list(bank_csv.parse(data, profile=profile))
    assert error.value.line == line


def test_a_csv_needs_a_known_profile():
    with pytest.raises(StatementError, match="needs a profile"):
        list(bank_csv.parse(b"a;b\n"))
    with pytest.raises(StatementError, match="unknown CSV profile 'fr-nowhere'"):
        list(bank_csv.parse(b"a;b\n", profile="fr-nowhere"))
