"""CFONB 120 on real files (shared fixtures) and on records built here, column by column."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from campaigns.bank import cfonb120
from campaigns.bank.records import StatementError
from tests.fixtures_dir import statement_bytes


def record(code: str, *, amount: str = "0000000001000{", decimals: str = "2", currency: str = "EUR",
           account: str = "00012345678", booking: str = "281126", value: str = "291126",
           label: str = "VIR SEPA M DUPONT", qualifier: str = "", info: str = "", reference: str = "",
           entry_number: str = "0000000") -> str:
    """One 120-character record, each field at the standard's columns."""
    line = [" "] * 120

    def put(start: int, text: str) -> None:  # 1-based column, as the standard counts
        line[start - 1:start - 1 + len(text)] = text

    put(1, code), put(3, "30004"), put(8, "0123"), put(12, "00001"), put(17, currency), put(20, decimals)
    put(22, account), put(35, booking)
    if code == "04":
        put(33, "05"), put(43, value), put(49, label.ljust(31)[:31]), put(82, entry_number)
        put(105, reference)
    if code == "05":
        put(46, qualifier), put(49, info)
    else:
        put(91, amount)
    return "".join(line)


def parse_lines(*lines: str) -> list:
    return list(cfonb120.parse("\r\n".join(lines).encode("latin-1")))


@pytest.mark.parametrize(("letter", "sign", "digit"), [
    ("{", 1, 0), ("A", 1, 1), ("B", 1, 2), ("C", 1, 3), ("D", 1, 4), ("E", 1, 5), ("F", 1, 6), ("G", 1, 7),
    ("H", 1, 8), ("I", 1, 9),
    ("}", -1, 0), ("J", -1, 1), ("K", -1, 2), ("L", -1, 3), ("M", -1, 4), ("N", -1, 5), ("O", -1, 6), ("P", -1, 7),
    ("Q", -1, 8), ("R", -1, 9),
])
def test_every_overpunch_letter_gives_its_sign_and_last_digit(letter, sign, digit):
    assert cfonb120.amount("0000000001234" + letter, "2", line=1) == sign * Decimal(f"123.4{digit}")
    (movement,) = parse_lines(record("04", amount="0000000001234" + letter))
    assert movement.amount == sign * Decimal(f"123.4{digit}")


@pytest.mark.parametrize(("decimals", "expected"), [("0", "12345.00"), ("1", "1234.50"), ("2", "123.45"),
                                                    (" ", "123.45"), ("3", "12.345")])
def test_the_decimals_column_places_the_point_and_a_fraction_of_a_cent_is_refused(decimals, expected):
    if expected == "12.345":
        with pytest.raises(StatementError, match="fraction of a cent") as error:
            parse_lines(record("04", amount="0000000001234E", decimals=decimals))
        assert error.value.line == 1
        return
    (movement,) = parse_lines(record("04", amount="0000000001234E", decimals=decimals))
    assert movement.amount == Decimal(expected)


def test_complements_join_their_movement_and_blank_lines_are_skipped():
    records = parse_lines(
        record("01", amount="0000000010000{"),
        "",
        record("04", amount="0000000005000{", label="VIR SEPA RECU", reference="REF123"),
        record("05", qualifier="LIB", info="DON JAUGE jg-7k3"),
        record("05", qualifier="LIB", info="f9xa MERCI"),
        record("05", qualifier="NPY", info="MARIE CURIE"),
        record("05", qualifier="ZZZ", info="UNKNOWN QUALIFIER KEPT"),
        "   ",
        record("04", amount="0000000000250}", label="FRAIS", currency="   ", decimals=" "),
        record("07", amount="0000000014975{"),
    )
    gift, fee = records
    assert gift.amount == Decimal("500.00") and gift.payer_name == "MARIE CURIE"
    assert gift.texts[0] == "VIR SEPA RECU DON JAUGE jg-7k3 f9xa MERCI"
    assert "UNKNOWN QUALIFIER KEPT" in gift.texts and "REF123" in gift.texts
    assert gift.booking_date == date(2026, 11, 28) and gift.value_date == date(2026, 11, 29)
    assert gift.account == "00012345678" and gift.line == 3 and gift.raw.count("\n") == 4
    assert (fee.amount, fee.currency, fee.line) == (Decimal("-25.00"), "EUR", 9)


@pytest.mark.parametrize(("lines", "reason", "line"), [
    ([record("04", amount="00000000012345")], "unreadable amount", 1),  # a plain digit: no sign
    ([record("04", amount="0000000 01234{")], "unreadable amount", 1),
    ([record("01"), record("04", amount="0000000001234X")], "unreadable amount", 2),
    ([record("01", amount="00000000000ABC")], "unreadable amount", 1),  # balances are read too
    ([record("01"), record("05", qualifier="LIB", info="ORPHAN")], "no movement", 2),
    ([record("04", booking="311126")], "not a valid date", 1),
    ([record("04", booking="      ")], "missing booking date", 1),
    ([record("04", decimals="X")], "decimals", 1),
    ([record("04"), record("09")], "unknown record code", 2),
    ([record("04") + "EXTRA"], "longer than 120", 1),
    (["Date;Libellé;Montant", "28/11/2026;DON;10,00"], "unknown record code", 1),
])
def test_it_refuses_a_bad_record_naming_its_line(lines, reason, line):
    with pytest.raises(StatementError, match=reason) as error:
        parse_lines(*lines)
    assert error.value.line == line


def test_records_without_line_breaks_are_read_by_their_length():
    data = (record("01") + record("04", amount="0000000000100A") + record("07")).encode()
    (movement,) = cfonb120.parse(data)
    assert movement.amount == Decimal("10.01") and movement.line == 2


# --- real files ---------------------------------------------------------------------------------

def test_it_reads_silarhis_statement_all_debits_and_an_outgoing_transfer():
    records = list(cfonb120.parse(statement_bytes("cfonb120", "cfonb120_silarhi_complex.txt")))
    assert [r.amount for r in records] == [Decimal(v) for v in ("-22.79", "-20.11", "-5000.00", "-117.75", "-50.25")]
    assert {r.account for r in records} == {"00012345603", "00020427603"}
    assert records[2].texts[0] == "VIR JOHNDOE / FOOBAR"  # "VIR" but `}`: money out
    assert "DEDIBOX 3706114" in records[0].text and "DONT TVA 11 39EUR" in records[3].text
    assert "PAYMENT ORDER 124359169" in records[4].text and "ERS INF ORDER 124359169" in records[4].text
    assert not [r for r in records if r.amount > 0]


def test_a_statement_with_only_balances_gives_no_lines():
    assert list(cfonb120.parse(statement_bytes("cfonb120", "cfonb120_silarhi_unused_parts.txt"))) == []


def test_it_reads_pennylanes_example_with_its_odd_complements():
    records = list(cfonb120.parse(statement_bytes("cfonb120", "cfonb120_pennylane_example.txt")))
    assert [r.amount for r in records] == [Decimal(v) for v in ("-32.21", "-10.70", "-7.90", "97.49", "-12.10",
                                                                  "-7.90")]
    credit = records[3]
    assert credit.booking_date == date(2019, 5, 17) and credit.texts[0].startswith("PRLV SEPA GROUPAMA CEN")
    assert "P051928612   22793301700040" in credit.text
    first = records[0]
    for text in ("REFERENCE", "OTHER REFERENCE", "INTERNETA AAA", "INTERNETI CCC", "EXAMPLE WITH EMPTY SPACE",
                 "EXAMPLE WITH OTHER COMBINATIONS"):
        assert text in first.text
    assert records[1].payer_name == "ELEC ERDF" and "REFERENCE" in records[1].texts
    assert Decimal("-190.40") + sum(r.amount for r in records[:3]) == Decimal("-241.21")  # 01 → 07 reconciles


def test_it_reads_lcls_file_with_blank_currency_and_decimals():
    records = list(cfonb120.parse(statement_bytes("cfonb120", "cfonb120_akretion_lcl.cfo")))
    assert [r.amount for r in records] == [Decimal("-2000.00"), Decimal("-1000.00"), Decimal("4000.00"),
                                           Decimal("-3000.00")]
    assert records[2].texts == ("LCL20000000144",) and records[2].booking_date == date(2011, 8, 21)
    assert {r.currency for r in records} == {"EUR"}
