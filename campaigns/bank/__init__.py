"""Bank statement parsers: pure functions from bytes to `StatementRecord`s, one module per format.

No Django import here: the parsers are tested on real files alone, and the import service
(`campaigns/services/statements.py`) stores and matches what they return.

Every format module exposes `parse(data: bytes, **options) -> Iterator[StatementRecord]` and
raises `StatementError` (naming the line or element) on any problem. `parse_statement` is the
one entry point: it checks the format name, the file's emptiness and its look before handing
it to the format's parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from campaigns.bank import camt053, cfonb120, csv, mt940
from campaigns.bank._common import check_encoding
from campaigns.bank.csv import PROFILES, CsvProfile
from campaigns.bank.records import StatementError, StatementRecord

__all__ = ["FORMATS", "PROFILES", "CsvProfile", "StatementError", "StatementRecord", "detect_format",
           "parse_statement"]

FORMATS: dict[str, Callable[..., Iterator[StatementRecord]]] = {
    "camt053": camt053.parse,
    "cfonb120": cfonb120.parse,
    "mt940": mt940.parse,
    "csv": csv.parse,
}

_CFONB_RE = re.compile(rb"^0[1457]\d{5}")
_CFONB_HEADER_RE = re.compile(rb"^0[1457]\d{5}.{9}[A-Z ]{3}[0-9 ]")  # code, bank, …, currency, decimals
_MT940_RE = re.compile(rb"(?m)^\s*(?:\{[1-5]:|:20:|:25:|:61:)")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def detect_format(data: bytes) -> str | None:
    """The format a file looks like (a hint for messages and the upload form), or None."""
    head = data[:4096]
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom):]
            break
    stripped = head.lstrip(b"\x00 \t\r\n")
    if stripped.startswith(b"<"):
        return "camt053"
    lines = [line for line in stripped.splitlines() if line.strip()]
    first = lines[0] if lines else b""
    if lines and all(_CFONB_RE.match(line) and len(line.rstrip()) <= cfonb120.RECORD_LENGTH for line in lines[:-1]
                     ) and _CFONB_HEADER_RE.match(first.ljust(cfonb120.RECORD_LENGTH)):
        return "cfonb120"
    if _MT940_RE.search(head):
        return "mt940"
    if b";" in first or b"," in first or b"\t" in first:
        return "csv"
    return None


def parse_statement(data: bytes, *, format: str, **options) -> Iterator[StatementRecord]:  # noqa: A002
    """The records of a statement file in `format` (one of FORMATS).

    Options go to the format's parser: `encoding` (all formats), `profile` (csv: a CsvProfile,
    a PROFILES name or a dict). Refuses at once, before any record: an unknown format, an empty
    file, an unknown encoding, a file that does not look like `format`; the parser then refuses
    anything else it cannot read, naming the line.
    """
    parser = FORMATS.get(format)
    if parser is None:
        raise StatementError(f"unknown statement format {format!r} (known: {', '.join(FORMATS)})")
    if not data or data.isspace():  # (no strip(): it would copy a whole 100 MB file)
        raise StatementError("empty file")
    if options.get("encoding"):
        check_encoding(options["encoding"])
    looks_like = detect_format(data)
    if looks_like != format and not (format == "csv" and looks_like is None):
        hint = f"; it looks like {looks_like}" if looks_like else ""
        raise StatementError(f"this file is not a {format} statement{hint}", line=1)
    return parser(data, **options)
