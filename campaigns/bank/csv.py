"""Bank CSV exports, read through a profile that says where everything is.

Every bank (and every export screen of a bank) lays its CSV out differently, so the file is
read through a `CsvProfile`: encoding, delimiter, decimal and thousands separators, date
format, which columns hold the date, the amount (or separate debit and credit columns), the
label, the payer, the reference, and how many lines come before the header. The editor picks
a profile at upload; the built-in ones are in `PROFILES`, others are saved in the database as
`CsvProfile.to_dict()` and rebuilt with `CsvProfile.from_dict()` (every field is plain JSON).

Amounts are read strictly by the profile's rule: `19.234,56` in a profile with a decimal point
is an error naming the line, never a guess.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from campaigns.bank._common import check_encoding, decode, to_cents
from campaigns.bank.records import StatementError, StatementRecord

Column = str | int  # a header name (case and accents as in the file, compared loosely) or a 0-based index
SIGN_CONVENTIONS = ("signed", "inverted")


@dataclass(frozen=True)
class CsvProfile:
    name: str = ""
    encoding: str = "auto"  # "auto": UTF-8 (BOM or not) when it decodes, else Windows-1252, else Latin-9
    delimiter: str = ";"
    quotechar: str = '"'
    decimal_separator: str = ","
    thousands_separator: str = ""  # "" = none accepted; " " also accepts the non-breaking spaces banks use
    date_format: str = "%d/%m/%Y"
    skip_rows: int = 0  # physical lines before the header (or before the data when has_header is false)
    skip_footer_rows: int = 0  # non-blank rows after the data (a total line) to ignore
    has_header: bool = True
    date_column: Column = "Date"
    value_date_column: Column | None = None
    amount_column: Column | None = None  # one signed amount column …
    debit_column: Column | None = None  # … or separate debit and credit columns (sign taken from the column)
    credit_column: Column | None = None
    label_columns: list[Column] = field(default_factory=list)
    payer_column: Column | None = None
    payer_regex: str = ""  # else: group 1 of this pattern searched in the label (e.g. r"DE: (.+?) REF:")
    reference_column: Column | None = None  # the bank's reference for the movement
    currency_column: Column | None = None
    currency: str = "EUR"
    account_column: Column | None = None
    account: str = ""  # the account the file is for, when the file does not say
    sign_convention: str = "signed"  # "signed": negative is money out; "inverted": negative is money in

    @classmethod
    def from_dict(cls, values: dict) -> CsvProfile:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise StatementError(f"unknown CSV profile settings: {', '.join(unknown)}")
        profile = cls(**values)
        profile.validate()
        return profile

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Raise StatementError naming the first inconsistent setting."""
        if self.encoding != "auto":
            check_encoding(self.encoding)
        if len(self.delimiter) != 1 or len(self.quotechar) != 1:
            raise StatementError("the delimiter and the quote character must be one character each")
        if self.decimal_separator not in (",", "."):
            raise StatementError(f"decimal separator must be ',' or '.', not {self.decimal_separator!r}")
        thousands = self.thousands_separator
        if thousands == self.decimal_separator or thousands not in ("", " ", ".", ",", "'"):
            raise StatementError(f"unusable thousands separator {self.thousands_separator!r}")
        if self.sign_convention not in SIGN_CONVENTIONS:
            raise StatementError(f"sign convention must be one of {SIGN_CONVENTIONS}, not {self.sign_convention!r}")
        if (self.amount_column is None) == (self.debit_column is None and self.credit_column is None):
            raise StatementError("give either an amount column or debit and credit columns")
        if self.amount_column is None and (self.debit_column is None or self.credit_column is None):
            raise StatementError("give both a debit and a credit column")
        if not self.has_header and any(isinstance(c, str) for c in self._columns().values()):
            raise StatementError("a file without a header row needs column numbers, not names")
        if self.skip_rows < 0 or self.skip_footer_rows < 0:
            raise StatementError("rows to skip cannot be negative")
        if self.payer_regex:
            try:
                re.compile(self.payer_regex)
            except re.error as exc:
                raise StatementError(f"payer pattern is not a valid regular expression: {exc}") from None
        try:
            datetime(2001, 2, 3).strftime(self.date_format)  # noqa: DTZ001 (only the format is checked)
        except ValueError:
            raise StatementError(f"unusable date format {self.date_format!r}") from None

    def _columns(self) -> dict[str, Column]:
        columns = {"date": self.date_column, "value date": self.value_date_column, "amount": self.amount_column,
                   "debit": self.debit_column, "credit": self.credit_column, "payer": self.payer_column,
                   "reference": self.reference_column, "currency": self.currency_column,
                   "account": self.account_column}
        columns |= {f"label {n + 1}": column for n, column in enumerate(self.label_columns)}
        return {what: column for what, column in columns.items() if column is not None}


PROFILES: dict[str, CsvProfile] = {
    # Date;Date de valeur;Débit;Crédit;Libellé;Solde — the common French layout (Crédit Mutuel, CIC, …)
    "fr-generic": CsvProfile(
        name="fr-generic", date_column="Date", debit_column="Débit", credit_column="Crédit",
        label_columns=["Libellé"]),
    "fr-creditmutuel": CsvProfile(
        name="fr-creditmutuel", encoding="iso-8859-15", date_column="Date", value_date_column="Date de valeur",
        debit_column="Débit", credit_column="Crédit", label_columns=["Libellé"]),
    # A "-" line, the account line, a blank line, then the header; one signed amount column.
    "fr-societegenerale": CsvProfile(
        name="fr-societegenerale", skip_rows=3, date_column="Date de l'opération",
        amount_column="Montant de l'opération", label_columns=["Libellé", "Détail de l'écriture"],
        currency_column="Devise", payer_regex=r"\bDE: ?(.+?) (?:REF|MOTIF|ID|PROVENANCE): "),
    # account;date;label;reference;amount; — no header row
    "fr-headerless": CsvProfile(
        name="fr-headerless", has_header=False, account_column=0, date_column=1, label_columns=[2],
        reference_column=3, amount_column=4),
    "en-generic": CsvProfile(
        name="en-generic", encoding="utf-8", delimiter=",", decimal_separator=".", thousands_separator=",",
        date_format="%Y-%m-%d", date_column="Date", amount_column="Amount", label_columns=["Description"]),
}


def _fold(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.strip().strip("\ufeff")).casefold()
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _decode(data: bytes, encoding: str) -> str:
    if encoding != "auto":
        return decode(data, encoding)
    for candidate in ("utf-8", "cp1252"):
        try:
            return decode(data, candidate)
        except StatementError:
            continue
    return decode(data, "iso-8859-15")


def _amount_re(profile: CsvProfile) -> re.Pattern[str]:
    decimal = re.escape(profile.decimal_separator)
    if profile.thousands_separator:
        thousands = "[ \u00a0\u202f]" if profile.thousands_separator == " " else re.escape(profile.thousands_separator)
        integer = rf"(?:\d{{1,3}}(?:{thousands}\d{{3}})+|\d+)"
    else:
        integer = r"\d+"
    return re.compile(rf"^(?P<sign>[-+\u2212]?)\s*(?P<int>{integer})(?:{decimal}(?P<frac>\d+))?\s*(?:€|EUR)?$")


def _read_amount(cell: str, pattern: re.Pattern[str], *, line: int, column: str) -> Decimal:
    match = pattern.match(cell.strip())
    if not match:
        raise StatementError(f"unreadable amount {cell.strip()!r} in column {column}", line=line)
    integer = re.sub(r"\D", "", match["int"])
    value = Decimal(f"{integer}.{match['frac'] or '0'}")
    return to_cents(-value if match["sign"] in ("-", "\u2212") else value, line=line)


def _resolve(profile: CsvProfile, header: list[str] | None, *, line: int) -> dict[str, int]:
    """Each configured column's index in the row."""
    positions: dict[str, int] = {}
    folded = [_fold(h) for h in header] if header is not None else None
    for what, column in profile._columns().items():
        if isinstance(column, int):
            positions[what] = column
            continue
        if folded is None or _fold(column) not in folded:
            raise StatementError(f"column {column!r} ({what}) is not in the header — wrong profile or not "
                                 f"this bank's CSV", line=line)
        positions[what] = folded.index(_fold(column))
    return positions


def _cell(row: list[str], positions: dict[str, int], what: str, *, line: int) -> str:
    index = positions.get(what)
    if index is None:
        return ""
    if index >= len(row):
        raise StatementError(f"row has {len(row)} columns, the {what} is expected in column {index + 1}",
                             line=line)
    return row[index].strip()


def _read_date(cell: str, profile: CsvProfile, *, line: int, what: str):
    try:
        return datetime.strptime(cell, profile.date_format).date()  # noqa: DTZ007 (a calendar date, no time)
    except ValueError:
        raise StatementError(f"unreadable {what} {cell!r} (expected {profile.date_format})", line=line) from None


def parse(data: bytes, *, profile: CsvProfile | str | dict | None = None, encoding: str | None = None,
          **options) -> Iterator[StatementRecord]:
    """Each data row of a bank CSV export, read through `profile` (a CsvProfile, a PROFILES name or a dict).

    `encoding`, when given, overrides the profile's.
    """
    if options:
        raise StatementError(f"csv takes only `profile` and `encoding`, got {sorted(options)}")
    if profile is None:
        raise StatementError("a CSV statement needs a profile (which columns hold what)")
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise StatementError(f"unknown CSV profile {profile!r} (built-in: {', '.join(sorted(PROFILES))})")
        profile = PROFILES[profile]
    elif isinstance(profile, dict):
        profile = CsvProfile.from_dict(profile)
    if encoding:
        profile = dataclasses.replace(profile, encoding=encoding)
    profile.validate()
    if not data.strip():
        raise StatementError("empty file")
    text = _decode(data, profile.encoding).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    body = "\n".join(lines[profile.skip_rows:])
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=profile.delimiter, quotechar=profile.quotechar)
    offset = profile.skip_rows

    rows: list[tuple[int, int, list[str]]] = []
    previous_end = 0
    try:
        for row in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if any(cell.strip() for cell in row):
                rows.append((start + offset, reader.line_num + offset, row))
    except csv.Error as exc:
        raise StatementError(f"malformed CSV: {exc}", line=reader.line_num + offset) from None
    if profile.has_header:
        if not rows:
            raise StatementError("no header row", line=offset + 1)
        header_line, _, header = rows.pop(0)
        positions = _resolve(profile, header, line=header_line)
    else:
        positions = _resolve(profile, None, line=offset + 1)
    if profile.skip_footer_rows:
        rows = rows[:-profile.skip_footer_rows]

    amount_re = _amount_re(profile)
    payer_re = re.compile(profile.payer_regex) if profile.payer_regex else None
    for start, end, row in rows:
        line = start
        booking = _read_date(_cell(row, positions, "date", line=line), profile, line=line, what="date")
        value_cell = _cell(row, positions, "value date", line=line)
        value_date = _read_date(value_cell, profile, line=line, what="value date") if value_cell else None
        if "amount" in positions:
            cell = _cell(row, positions, "amount", line=line)
            amount = _read_amount(cell, amount_re, line=line, column=str(profile.amount_column))
            if profile.sign_convention == "inverted":
                amount = -amount
        else:
            debit = _cell(row, positions, "debit", line=line)
            credit = _cell(row, positions, "credit", line=line)
            if bool(debit) == bool(credit):
                raise StatementError("a row needs an amount in exactly one of the debit and credit columns",
                                     line=line)
            if debit:
                amount = -abs(_read_amount(debit, amount_re, line=line, column=str(profile.debit_column)))
            else:
                amount = abs(_read_amount(credit, amount_re, line=line, column=str(profile.credit_column)))
        label = " ".join(
            " ".join(_cell(row, positions, f"label {n + 1}", line=line).split())
            for n in range(len(profile.label_columns))).strip()
        payer = _cell(row, positions, "payer", line=line)
        if not payer and payer_re is not None:
            found = payer_re.search(label)
            payer = found.group(1).strip() if found and found.groups() else ""
        reference = _cell(row, positions, "reference", line=line)
        currency = (_cell(row, positions, "currency", line=line) or profile.currency).upper()
        yield StatementRecord(
            account=_cell(row, positions, "account", line=line) or profile.account,
            booking_date=booking, value_date=value_date, amount=amount, currency=currency,
            bank_reference=reference, payer_name=payer, texts=tuple(t for t in (label,) if t),
            raw="\n".join(lines[start - 1:end]), line=line, extra={"profile": profile.name},
        )
