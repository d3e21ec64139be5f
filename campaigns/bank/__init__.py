"""Bank statement parsers: pure functions from bytes to `StatementRecord`s, one module per format.

No Django import here: the parsers are tested on real files alone, and the import service
(`campaigns/services/statements.py`) stores and matches what they return.

Each format module exposes `parse(data: bytes, **options) -> Iterator[StatementRecord]`;
`parse_statement` picks it by name. (Stand-in registry of the `statements` branch: the
`bank-parsers` branch's version of this file replaces it.)
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from campaigns.bank.records import StatementError, StatementRecord

FORMATS = ("camt053", "cfonb120", "mt940", "csv")

__all__ = ["FORMATS", "StatementError", "StatementRecord", "parse_statement"]


def parse_statement(data: bytes, *, format: str, **options) -> Iterator[StatementRecord]:  # noqa: A002
    if format not in FORMATS:
        raise StatementError(f"unknown statement format {format!r} (one of {', '.join(FORMATS)})")
    try:
        module = importlib.import_module(f"campaigns.bank.{format}")
    except ModuleNotFoundError:
        raise StatementError(f"the {format} parser is not installed") from None
    return module.parse(data, **options)
