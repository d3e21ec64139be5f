"""Statement import: a file is stored whole or not at all, and importing it again adds nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from campaigns.bank.records import StatementError
from campaigns.models import AuditLog, LedgerEntry, StatementImport, StatementLine
from campaigns.services import statements
from tests.fixtures_dir import fixture_path
from tests.statement_files import Entry, camt053

REAL_CAMT = [
    "camt053_v02_oca_nl_testbank.xml",
    "camt053_v04_oca_ch_postfinance_batch.xml",
    "camt053_v02_pretix_de_vrbank_sepatools.xml",
    "camt053_v08_pretix_de_bundesbank_nonamespace.xml",
    "camt053_v08_ofxstatement_ch_sps_redacted.xml",
    "camt053_v04_ofxstatement_ch_raiffeisen_redacted.xml",
    "camt053_v08_genkgo_synthetic.xml",
    "camt053_v02_subite_be_anonymised_268.xml",
]


def _import(data: bytes, name: str = "releve.xml", fmt: str = "camt053"):
    return statements.statement_import(data=data, file_name=name, format=fmt)


@pytest.mark.parametrize("name", REAL_CAMT)
def test_it_stores_every_movement_of_a_real_camt_file_and_a_reimport_adds_nothing(db, name):
    data = fixture_path("statements", "camt053", name).read_bytes()
    first = _import(data, name)
    assert first.lines_read > 0
    stored = StatementLine.objects.count()
    # Every movement kept, raw text included: identical lines of one file both count.
    assert first.lines_new == first.lines_read == stored
    assert all(line.raw for line in StatementLine.objects.all())
    second = _import(data, name)
    assert (second.lines_read, second.lines_new) == (first.lines_read, 0)
    assert StatementLine.objects.count() == stored
    assert second.statement_import.status == StatementImport.Status.DONE


def test_it_keeps_the_only_credit_of_the_testbank_file_to_the_cent(db):
    _import(fixture_path("statements", "camt053", "camt053_v02_oca_nl_testbank.xml").read_bytes())
    credit = StatementLine.objects.get(direction=StatementLine.Direction.CREDIT)
    assert (credit.amount_minor, credit.currency, str(credit.booking_date)) == (140531, "EUR", "2014-01-05")
    assert "CUSNO 90782" in credit.text
    # The returned direct-debit batch (564.05 + 100.00 = 664.05) splits into its two parts.
    assert StatementLine.objects.filter(direction=StatementLine.Direction.DEBIT).count() == 3


def test_two_identical_gifts_on_the_same_day_both_count(db):
    gift = Entry("25.00", "DON LECTEUR")
    result = _import(camt053([gift, gift]))
    assert result.lines_new == 2
    assert sorted(StatementLine.objects.values_list("occurrence", flat=True)) == [0, 1]
    assert _import(camt053([gift, gift])).lines_new == 0


def test_an_overlapping_file_adds_only_its_new_lines(db):
    monday, tuesday, wednesday = (Entry("10.00", "A", date="2026-11-23"), Entry("20.00", "B", date="2026-11-24"),
                                  Entry("30.00", "C", date="2026-11-25"))
    _import(camt053([monday, tuesday]), "week1.xml")
    result = _import(camt053([tuesday, wednesday, wednesday]), "week2.xml")
    assert (result.lines_read, result.lines_new) == (3, 2)
    assert StatementLine.objects.count() == 4


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_identical_lines_count_across_batches_and_in_a_file_out_of_date_order(db, monkeypatch, vendor):
    # One line per store batch: each occurrence is counted from earlier batches (in a temporary
    # table on PostgreSQL, in a dict elsewhere).
    monkeypatch.setattr(statements, "STORE_BATCH", 1)
    monkeypatch.setattr(connection, "vendor", vendor)
    gift, other = Entry("25.00", "DON LECTEUR", date="2026-11-20"), Entry("10.00", "DON", date="2026-11-21")
    result = _import(camt053([gift, other, gift, other, gift]))
    assert result.lines_new == 5
    assert sorted(StatementLine.objects.filter(amount_minor=2500).values_list("occurrence", flat=True)) == [0, 1, 2]
    # The same movements in another order are the same lines.
    assert _import(camt053([other, gift, gift, other, gift]), "again.xml").lines_new == 0


def test_an_overlapping_file_with_a_third_identical_gift_adds_exactly_that_one(db, monkeypatch):
    monkeypatch.setattr(statements, "STORE_BATCH", 2)
    gift = Entry("25.00", "DON LECTEUR", date="2026-11-05")
    days = [Entry(f"{day}.00", f"JOUR {day}", date=f"2026-11-{day:02d}") for day in range(1, 16)]
    _import(camt053(days[:5] + [gift, gift] + days[5:10]), "days-1-10.xml")
    assert StatementLine.objects.count() == 12
    # Days 5 to 15, the 5th now with three identical gifts, one of them far from the others.
    result = _import(camt053(days[4:5] + [gift] + days[5:12] + [gift] + days[12:] + [gift]), "days-5-15.xml")
    assert (result.lines_read, result.lines_new) == (14, 6)
    new = StatementLine.objects.filter(statement_import=result.statement_import)
    assert sorted(new.values_list("text", flat=True)) == ["DON LECTEUR"] + [f"JOUR {day}" for day in range(11, 16)]
    assert new.get(text="DON LECTEUR").occurrence == 2
    assert StatementLine.objects.filter(text="DON LECTEUR").count() == 3


def test_the_occurrence_count_is_dropped_with_the_import(db, monkeypatch):
    # Imports in one transaction (a script, a test): each counts from zero again, a refused one too.
    monkeypatch.setattr(statements, "STORE_BATCH", 1)
    gift = Entry("25.00", "DON LECTEUR")
    assert _import(camt053([gift]), "a.xml").lines_new == 1
    with pytest.raises(StatementError):  # refused after its first line was counted: rolled back
        _import(camt053([gift, Entry("1.00", "X", currency="XYZ")]), "bad.xml")
    assert _import(camt053([gift, gift]), "b.xml").lines_new == 1
    assert sorted(StatementLine.objects.values_list("occurrence", flat=True)) == [0, 1]


def test_text_differing_only_in_case_and_spaces_is_the_same_line(db):
    _import(camt053([Entry("10.00", "Don  JG-ABC")]))
    assert _import(camt053([Entry("10.00", "don jg-abc")])).lines_new == 0


def _assert_refused(data: bytes, message: str, fmt: str = "camt053") -> StatementError:
    ledger_before = LedgerEntry.objects.count()
    with pytest.raises(StatementError, match=message) as caught:
        _import(data, fmt=fmt)
    assert StatementLine.objects.count() == 0
    assert LedgerEntry.objects.count() == ledger_before
    failed = StatementImport.objects.get()
    assert failed.status == StatementImport.Status.FAILED and failed.lines_new == 0
    assert str(caught.value) in failed.error
    return caught.value


def test_a_truncated_file_is_refused_with_its_line_and_nothing_is_stored(db):
    good = camt053([Entry("10.00", "A"), Entry("20.00", "B"), Entry("30.00", "C")])
    error = _assert_refused(good[: len(good) - 120], "malformed XML")
    assert error.line is not None


def test_an_xml_bomb_is_refused(db):
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b"<Document><BkToCstmrStmt><Stmt><Ntry><Amt Ccy='EUR'>&lol2;</Amt></Ntry></Stmt></BkToCstmrStmt>"
            b"</Document>")
    _assert_refused(bomb, "document type declaration")


def test_an_external_entity_is_refused(db):
    xxe = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Document>&x;</Document>'
    _assert_refused(xxe, "document type declaration")


def test_an_empty_file_is_refused(db):
    _assert_refused(b"", "empty file")


def test_an_unknown_format_flag_is_refused(db):
    _assert_refused(camt053([Entry("10.00", "A")]), "unknown statement format", fmt="qif")


def test_a_bad_line_in_the_middle_rolls_the_whole_file_back(db):
    data = camt053([Entry("10.00", "A"), Entry("12.345", "three decimals"), Entry("30.00", "C")])
    error = _assert_refused(data, "fraction of a cent")
    assert error.line == 4  # the <Ntry> of the second entry


def test_an_unknown_currency_is_refused_with_its_line(db):
    _assert_refused(camt053([Entry("10.00", "A", currency="XYZ")]), "unknown currency 'XYZ'")


def test_a_file_over_the_limit_is_refused_before_parsing(db, settings):
    settings.STATEMENT_MAX_BYTES = 1000
    # Not XML at all: had it been parsed, the error would be a parse error, not the size.
    _assert_refused(b"x" * 1001, "over the limit of 1000 bytes")


def test_the_command_prints_the_summary_and_a_reimport_adds_nothing(db, tmp_path, capsys):
    path = tmp_path / "releve.xml"
    path.write_bytes(camt053([Entry("10.00", "A"), Entry("5.00", "frais", credit=False)]))
    call_command("import_statement", str(path), "--format", "camt053")
    out = capsys.readouterr().out
    assert "2 line(s) read, 2 new" in out and "credits 1, debits 1" in out
    call_command("import_statement", str(path), "--format", "camt053")
    assert "2 line(s) read, 0 new, 2 already imported" in capsys.readouterr().out
    assert StatementLine.objects.count() == 2
    assert AuditLog.objects.filter(action=AuditLog.Action.STATEMENT_IMPORT).count() == 2


def test_the_command_exits_1_on_a_bad_file_and_stores_nothing(db, tmp_path, settings):
    path = tmp_path / "big.xml"
    path.write_bytes(camt053([Entry("10.00", "A")]))
    settings.STATEMENT_MAX_BYTES = 100
    with pytest.raises(CommandError, match="refused, nothing stored: .*STATEMENT_MAX_BYTES") as caught:
        call_command("import_statement", str(path), "--format", "camt053")
    assert caught.value.returncode == 1
    assert StatementLine.objects.count() == 0


def test_a_saved_csv_profile_imports_a_real_french_export_with_debit_and_credit_columns(db):
    from campaigns.models import CsvProfile

    data = fixture_path("statements", "csv", "csv_fr_creditmutuel_ccm_latin9.csv").read_bytes()
    profile = CsvProfile.objects.create(
        name="ccm", encoding="iso-8859-15", delimiter=";", decimal_separator=",", date_format="%d/%m/%Y",
        skip_rows=1, date_column="Date", debit_column="Débit", credit_column="Crédit", label_column="Libellé",
        sign_convention=CsvProfile.Sign.COLUMNS,
    )
    first = statements.statement_import(data=data, file_name="ccm.csv", format="csv", profile_id=profile.pk)
    assert first.lines_read == first.lines_new == StatementLine.objects.count() > 0
    debit = StatementLine.objects.filter(text__contains="ACME TELECOM").earliest("booking_date")
    assert (debit.direction, debit.amount_minor, str(debit.booking_date)) == (
        StatementLine.Direction.DEBIT, 2699, "2025-11-03")  # amounts are stored unsigned beside their direction
    assert statements.statement_import(data=data, file_name="ccm.csv", format="csv",
                                       profile_id=profile.pk).lines_new == 0


def test_a_csv_without_a_profile_is_refused_and_nothing_is_stored(db):
    with pytest.raises(StatementError, match="profile"):
        statements.statement_import(data=b"Date;Montant\n01/01/2025;1,00\n", file_name="x.csv", format="csv")
    assert StatementLine.objects.count() == 0


FR_GENERIC_CSV = (
    "Date;Date de valeur;Débit;Crédit;Libellé;Solde\n"
    "03/11/2025;03/11/2025;-26,99;;PRLV SEPA OPERATEUR MOBILE;8350,59\n"
    "04/11/2025;04/11/2025;;25,00;VIR SEPA DON JG-ABC;8375,59\n"
    "04/11/2025;04/11/2025;;25,00;VIR SEPA DON JG-ABC;8400,59\n"
).encode("utf-8-sig")


def test_the_command_reads_a_csv_through_a_built_in_profile_and_a_reimport_adds_nothing(db, tmp_path, capsys):
    path = tmp_path / "releve.csv"
    path.write_bytes(FR_GENERIC_CSV)
    call_command("import_statement", str(path), "--format", "csv", "--profile", "fr-generic")
    assert "3 line(s) read, 3 new" in capsys.readouterr().out
    debit = StatementLine.objects.get(direction=StatementLine.Direction.DEBIT)
    assert (debit.amount_minor, str(debit.booking_date)) == (2699, "2025-11-03")
    assert StatementLine.objects.filter(amount_minor=2500).count() == 2
    call_command("import_statement", str(path), "--format", "csv", "--profile", "fr-generic")
    assert "3 line(s) read, 0 new, 3 already imported" in capsys.readouterr().out
    assert AuditLog.objects.filter(action=AuditLog.Action.STATEMENT_IMPORT).latest("pk").details[
        "builtin_profile"] == "fr-generic"


def test_the_same_bytes_through_another_built_in_profile_are_read_again(db, tmp_path):
    # No saved profile to compare: the identical-file shortcut must not skip the second reading.
    path = tmp_path / "releve.csv"
    path.write_bytes(FR_GENERIC_CSV)
    call_command("import_statement", str(path), "--format", "csv", "--profile", "fr-generic", "--no-match")
    with pytest.raises(CommandError, match="refused, nothing stored: .*is not in the header"):
        call_command("import_statement", str(path), "--format", "csv", "--profile", "fr-societegenerale")
    assert StatementLine.objects.count() == 3


def test_the_command_refuses_an_unknown_profile_naming_the_known_ones(db, tmp_path):
    path = tmp_path / "releve.csv"
    path.write_bytes(FR_GENERIC_CSV)
    with pytest.raises(CommandError, match="unknown CSV profile 'fr-nowhere'.*built-in: en-generic, fr-creditmutuel"):
        call_command("import_statement", str(path), "--format", "csv", "--profile", "fr-nowhere")
    assert StatementLine.objects.count() == 0
    assert not StatementImport.objects.exists()
