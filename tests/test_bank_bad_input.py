"""What `parse_statement` refuses, and how: a reason and, where there is one, the line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from campaigns.bank import FORMATS, CsvProfile, detect_format, parse_statement
from campaigns.bank.records import StatementError
from tests.fixtures_dir import statement_bytes
from tests.guards import deadline
from tests.test_bank_cfonb120 import record

DATA = Path(__file__).parent / "data" / "bank"
SMALL = {
    "camt053": (DATA / "camt053_v08_small.xml").read_bytes(),
    "mt940": (DATA / "mt940_small.sta").read_bytes(),
    "cfonb120": "\n".join([record("01"), record("04", amount="0000000000250{"), record("07")]).encode(),
    "csv": (DATA / "csv_fr_utf8_bom.csv").read_bytes(),
}
OPTIONS = {"csv": {"profile": CsvProfile(encoding="utf-8-sig", thousands_separator=" ", debit_column="Débit",
                                          credit_column="Crédit", label_columns=["Libellé"])}}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_reads_its_own_small_file_through_the_registry(name):
    records = list(parse_statement(SMALL[name], format=name, **OPTIONS.get(name, {})))
    assert records and all(isinstance(r.amount, Decimal) for r in records)
    assert detect_format(SMALL[name]) == name


def test_an_unknown_format_is_refused_before_reading():
    with pytest.raises(StatementError, match="unknown statement format 'ofx'"):
        parse_statement(SMALL["camt053"], format="ofx")


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("data", [b"", b"  \r\n\n\t "])
def test_an_empty_file_is_refused_in_every_format(name, data):
    with pytest.raises(StatementError, match="empty file"):
        parse_statement(data, format=name, **OPTIONS.get(name, {}))
    with pytest.raises(StatementError, match="empty file"):
        list(FORMATS[name](data, **OPTIONS.get(name, {})))  # the parsers check it themselves too
    assert (DATA / "empty.csv").read_bytes() == b""


@pytest.mark.parametrize(("actual", "claimed"), [
    (actual, claimed) for actual in sorted(SMALL) for claimed in sorted(FORMATS) if actual != claimed
])
def test_a_wrong_format_flag_is_refused_naming_what_the_file_looks_like(actual, claimed):
    with pytest.raises(StatementError, match=f"not a {claimed} statement") as error:
        list(parse_statement(SMALL[actual], format=claimed, **OPTIONS.get(claimed, {})))
    assert error.value.line == 1
    if claimed != "csv":
        assert f"looks like {actual}" in str(error.value)


@pytest.mark.parametrize(("data", "claimed", "reason"), [
    # past the first look, each parser still refuses what is not its format
    (b"<?xml version='1.0'?><Document><BkToCstmrDbtCdtNtfctn/></Document>", "camt053", "no BkToCstmrStmt"),
    (b"<html><body>not a statement</body></html>", "camt053", "no BkToCstmrStmt"),
    (record("01", amount="NOT AN AMOUNT!").encode(), "cfonb120", "unreadable amount"),
])
def test_a_file_that_only_looks_like_the_format_is_refused_by_its_parser(data, claimed, reason):
    with pytest.raises(StatementError, match=reason):
        list(parse_statement(data, format=claimed))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_an_unknown_encoding_is_refused_in_every_format(name):
    with pytest.raises(StatementError, match="unknown encoding: 'klingon-8'"):
        list(parse_statement(SMALL[name], format=name, encoding="klingon-8", **OPTIONS.get(name, {})))


def test_bytes_that_are_not_the_given_encoding_are_refused_naming_the_line():
    data = SMALL["mt940"].replace(b"REMBOURSEMENT FRAIS", b"REMBOURSEMENT \xe9 FRAIS")
    with pytest.raises(StatementError, match="not valid utf-8") as error:
        list(parse_statement(data, format="mt940", encoding="utf-8"))
    assert error.value.line == 13
    # without an encoding, a file that is not UTF-8 is read as Latin-1, as old bank exports are
    assert "REMBOURSEMENT é FRAIS" in [r.text for r in parse_statement(data, format="mt940")][2]


def test_truncated_xml_is_refused_naming_the_line_where_it_stops():
    data = (DATA / "camt053_truncated.xml").read_bytes()
    records = parse_statement(data, format="camt053")
    with pytest.raises(StatementError, match="malformed XML") as error:
        list(records)
    assert error.value.line == data.count(b"\n") + 1


@pytest.mark.parametrize("name", ["camt053_billion_laughs.xml", "camt053_external_entity.xml"])
def test_an_xml_bomb_or_external_entity_is_refused_without_expanding_anything(name):
    with deadline(10), pytest.raises(StatementError, match="document type declaration") as error:
        list(parse_statement((DATA / name).read_bytes(), format="camt053"))
    assert error.value.line == 2
    assert "root:" not in str(error.value)


def test_a_doctype_in_utf16_is_refused_too():
    data = (DATA / "camt053_external_entity.xml").read_text().replace('<?xml version="1.0"?>',
                                                                      '<?xml version="1.0" encoding="UTF-16"?>')
    with pytest.raises(StatementError, match="document type declaration"):
        list(parse_statement(data.encode("utf-16"), format="camt053"))


def test_19_234_56_in_a_dot_decimal_profile_is_refused_naming_the_line():
    from tests.test_bank_csv import DOT_DECIMAL

    data = (DATA / "csv_dot_decimal_bad_amount.csv").read_bytes()
    records = parse_statement(data, format="csv", profile=DOT_DECIMAL)
    with pytest.raises(StatementError, match=r"line 3: unreadable amount '19.234,56' in column Montant"):
        list(records)


def test_a_real_file_of_each_format_passes_the_first_look():
    for folder, name, fmt in [("camt053", "camt053_v02_oca_nl_testbank.xml", "camt053"),
                              ("cfonb120", "cfonb120_akretion_lcl.cfo", "cfonb120"),
                              ("mt940", "mt940_oca_nl_ing.940", "mt940"),
                              ("csv", "csv_fr_headerless_reckon.csv", "csv")]:
        options = {"profile": "fr-headerless"} if fmt == "csv" else {}
        assert list(parse_statement(statement_bytes(folder, name), format=fmt, **options))


def test_the_parsers_import_no_django():
    import subprocess
    import sys

    code = ("import sys, campaigns.bank, campaigns.bank.reference_search; "
            "sys.exit(sorted(m for m in sys.modules if m.split('.')[0] == 'django') or 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert result.returncode == 0, result.stderr
