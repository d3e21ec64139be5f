"""CFONB 120 (the French banks' 120-character account statement, "relevé AFB 120").

Records by their first two characters: `01` opening balance, `04` movement, `05` complement of
the movement before it (qualifier at columns 46-48: LIB label, NPY payer name, NBE beneficiary,
RCN end-to-end reference, …), `07` closing balance. Positions below are the standard's
1-based columns, written as Python slices.

Amounts: 14 characters at columns 91-104, the count of decimals at column 20 (blank means 2:
LCL leaves it blank), and the last character carries both the sign and the last digit
("over-punch"): `{` and `A`-`I` are +0 and +1…+9, `}` and `J`-`R` are -0 and -1…-9.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from campaigns.bank._common import decode, make_date, to_cents
from campaigns.bank.records import StatementError, StatementRecord

RECORD_LENGTH = 120
OVERPUNCH = {"{": (1, 0), "}": (-1, 0)}
OVERPUNCH |= {letter: (1, digit) for digit, letter in enumerate("ABCDEFGHI", start=1)}
OVERPUNCH |= {letter: (-1, digit) for digit, letter in enumerate("JKLMNOPQR", start=1)}
DEFAULT_CURRENCY = "EUR"  # LCL leaves the currency blank on balance records; the franc is long gone

_CODE, _BANK, _BRANCH, _CURRENCY, _DECIMALS, _ACCOUNT = (
    slice(0, 2), slice(2, 7), slice(11, 16), slice(16, 19), slice(19, 20), slice(21, 32))
_OPERATION, _DATE, _REJECT, _VALUE_DATE = slice(32, 34), slice(34, 40), slice(40, 42), slice(42, 48)
_LABEL = slice(48, 79)
_ENTRY_NUMBER, _AMOUNT, _REFERENCE = slice(81, 88), slice(90, 104), slice(104, 120)
_QUALIFIER, _INFO = slice(45, 48), slice(48, 118)


def amount(field: str, decimals_field: str, *, line: int) -> Decimal:
    """The signed Decimal of a 14-character over-punched amount field."""
    digits, last = field[:-1], field[-1:]
    if not digits.isdigit() or not digits.isascii() or last not in OVERPUNCH:
        raise StatementError(f"unreadable amount {field!r} (columns 91-104)", line=line)
    decimals_field = decimals_field.strip()
    if decimals_field and not decimals_field.isdigit():
        raise StatementError(f"unreadable decimals count {decimals_field!r} (column 20)", line=line)
    decimals = int(decimals_field) if decimals_field else 2
    sign, digit = OVERPUNCH[last]
    value = Decimal(sign * int(digits + str(digit))).scaleb(-decimals)
    return to_cents(value, line=line)


def _date(field: str, *, line: int, what: str, required: bool):
    if field.strip() in ("", "000000"):
        if required:
            raise StatementError(f"missing {what} (JJMMAA)", line=line)
        return None
    if not field.isdigit():
        raise StatementError(f"unreadable {what} {field!r} (JJMMAA)", line=line)
    day, month, year = int(field[0:2]), int(field[2:4]), int(field[4:6])
    return make_date(year + (1900 if year >= 70 else 2000), month, day, raw=field, line=line)


def _lines(data: bytes, encoding: str | None) -> Iterator[tuple[int, str]]:
    if encoding:
        text = decode(data, encoding)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("iso-8859-15")  # old bank exports: Latin-9, one byte per column
    if "\n" not in text and "\r" not in text and len(text) > RECORD_LENGTH and len(text) % RECORD_LENGTH == 0:
        # Some banks send the records back to back, with no line breaks.
        for index in range(0, len(text), RECORD_LENGTH):
            yield index // RECORD_LENGTH + 1, text[index:index + RECORD_LENGTH]
        return
    # Only \n ends a record: str.splitlines would also split on \x85 or \x0c inside a Latin-9 label.
    yield from enumerate((line.rstrip("\r") for line in text.split("\n")), start=1)


class _Movement:
    def __init__(self, record: str, line: int, currencies: dict[str, str]) -> None:
        self.record, self.line, self.complements = record, line, []
        self.complement_lines = [record]
        self.account = record[_ACCOUNT].strip()
        self.currency = record[_CURRENCY].strip() or currencies.get(self.account, DEFAULT_CURRENCY)
        self.amount = amount(record[_AMOUNT], record[_DECIMALS], line=line)
        self.booking_date = _date(record[_DATE], line=line, what="booking date (columns 35-40)", required=True)
        self.value_date = _date(record[_VALUE_DATE], line=line, what="value date (columns 43-48)", required=False)

    def add(self, record: str) -> None:
        self.complement_lines.append(record)
        qualifier, info = record[_QUALIFIER], record[_INFO].strip()
        if info or qualifier.strip():
            self.complements.append((qualifier, info))

    def to_record(self) -> StatementRecord:
        record = self.record
        label = record[_LABEL].strip()
        labels = [info for qualifier, info in self.complements if qualifier == "LIB" and info]
        by_qualifier: dict[str, list[str]] = {}
        for qualifier, info in self.complements:
            by_qualifier.setdefault(qualifier.strip(), []).append(info)
        texts = [" ".join([label, *labels]).strip()]
        # Every other complement is kept as text (unknown qualifiers too: banks invent their own).
        texts += [info for qualifier, info in self.complements if qualifier != "LIB" and info]
        reference = record[_REFERENCE].strip()
        if reference:
            texts.append(reference)
        payer = by_qualifier.get("NPY", []) if self.amount > 0 else by_qualifier.get("NBE", by_qualifier.get("NPY", []))
        entry_number = record[_ENTRY_NUMBER].strip()
        return StatementRecord(
            account=self.account, booking_date=self.booking_date, amount=self.amount, currency=self.currency,
            value_date=self.value_date, bank_reference=entry_number if entry_number.strip("0") else "",
            payer_name=" ".join(payer).strip(), texts=tuple(t for t in texts if t),
            raw="\n".join(self.complement_lines), line=self.line,
            extra={"bank_code": record[_BANK], "branch_code": record[_BRANCH].strip(),
                   "operation_code": record[_OPERATION].strip(), "reject_code": record[_REJECT].strip(),
                   "reference": reference,
                   "complements": [f"{q.strip()}:{info}" for q, info in self.complements]},
        )


def parse(data: bytes, *, encoding: str | None = None, **options) -> Iterator[StatementRecord]:
    """Each `04` movement (with its `05` complements) of a CFONB 120 file, in file order.

    `encoding`: the file's charset; by default UTF-8 if the file decodes as such, else Latin-9.
    """
    if options:
        raise StatementError(f"cfonb120 takes only `encoding`, got {sorted(options)}")
    if not data.strip():
        raise StatementError("empty file")
    currencies: dict[str, str] = {}
    pending: _Movement | None = None
    for line, raw in _lines(data, encoding):
        if not raw.strip():
            continue  # blank lines between records are common (and harmless)
        record = raw.rstrip("\r\n")
        if len(record.rstrip()) > RECORD_LENGTH:
            raise StatementError(f"record longer than {RECORD_LENGTH} characters: not CFONB 120", line=line)
        record = record.ljust(RECORD_LENGTH)
        code = record[_CODE]
        if code == "05":
            if pending is None:
                raise StatementError("complement record (05) with no movement (04) before it", line=line)
            pending.add(record)
            continue
        if pending is not None:
            yield pending.to_record()
            pending = None
        if code == "04":
            pending = _Movement(record, line, currencies)
        elif code in ("01", "07"):
            amount(record[_AMOUNT], record[_DECIMALS], line=line)  # a balance must read too
            if code == "01" and record[_CURRENCY].strip():
                currencies[record[_ACCOUNT].strip()] = record[_CURRENCY].strip()
        else:
            raise StatementError(f"unknown record code {code!r}: not a CFONB 120 statement", line=line)
    if pending is not None:
        yield pending.to_record()
