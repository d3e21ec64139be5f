"""Small helpers the format modules share: money to the cent, strict dates, text decoding."""

from __future__ import annotations

import codecs
from datetime import date
from decimal import Decimal, InvalidOperation

from campaigns.bank.records import StatementError

CENT = Decimal("0.01")


def to_cents(value: Decimal, *, line: int | None = None, element: str | None = None) -> Decimal:
    """`value` exactly, with two decimals; a fraction of a cent is an error, never rounded away."""
    try:
        cents = value.quantize(CENT)
    except InvalidOperation:
        raise StatementError(f"amount out of range: {value}", line=line, element=element) from None
    if cents != value:
        raise StatementError(f"amount has a fraction of a cent: {value}", line=line, element=element)
    return cents


def make_date(year: int, month: int, day: int, *, raw: str, line: int | None = None,
              element: str | None = None) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise StatementError(f"not a valid date: {raw!r}", line=line, element=element) from None


def check_encoding(encoding: str) -> str:
    """The codec's canonical name, or a StatementError for a name Python does not know."""
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise StatementError(f"unknown encoding: {encoding!r}") from None


def decode(data: bytes, encoding: str) -> str:
    """Whole-file decode (a UTF-8 byte-order mark dropped); the error names the line of the bad byte."""
    name = check_encoding(encoding)
    if name in ("utf-8", "utf-8-sig") and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode(name)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StatementError(f"bytes not valid {name}: {data[exc.start:exc.end]!r}", line=line) from None
