"""SWIFT MT940 (customer statement), read with the `mt-940` library after a pre-pass of our own.

The pre-pass exists because real files are not what the library expects:
- SWIFT envelopes `{1:…}{2:…}{3:…}{4:` … `-}{5:…}` around each message (ASN Bank);
- lines wrapped anywhere, even inside a tag's fixed fields (ING: `:28C:0000` then `0`,
  `/TRCD/010` then `16`, `/REMI/USTD//CO` then `NTRIBUTIE`). A continuation line is
  rejoined to its tag: without a separator where the wrap is a hard one (fixed fields,
  structured `:86:`, a free-text line cut at the 65-character limit), with a line break
  where the bank really ended a line;
- a `:86:` after the balances (ING's `/SUM/` trailer) that the library would pin on the
  last transaction, overwriting its details.
Each statement (from one `:20:` to the next) is then given to `mt940.parse` with the options
that sign reversals (`RC` is money out) and keep long `:86:` fields whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import mt940 as mt940_library
from mt940 import tags as mt940_tags

from campaigns.bank._common import decode, to_cents
from campaigns.bank.records import StatementError, StatementRecord

LINE_LIMIT = 65  # SWIFT `x` lines of :86: are at most 65 characters: a full line was cut, not ended
OPTIONS = mt940_library.Options(
    reversal_sign=True,  # RC (reversal of a credit) takes money out: negative
    case_insensitive_marks=True,
    unbounded_details=True,  # keep :86: whole (5.0 cut it after 9 × 65 characters)
    applicant_iban=True,  # ?31 is the payer's IBAN, not the start of the name
    merge_keeps_values=True,
    non_swift_free_text=True,
)
_TAG_RE = re.compile(r"^:(?P<tag>\d{2}[A-Z]?|NS):(?P<value>.*)$")
_HEADER_RE = re.compile(r"^\s*(?:\{[1-3]:(?:[^{}]|\{[^{}]*\})*\})*(?:\{4:)?")
_TRAILER_RE = re.compile(r"-?\}(?:\{5:(?:[^{}]|\{[^{}]*\})*\})*\s*$")
_STATEMENT_LINE_RE = mt940_tags.StatementGLS().re  # customer references longer than 16x (ASN puts an IBAN there)
_AMOUNT_RE = re.compile(r"^\d+(,\d*)?$")
_IBAN_RE = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")
# ING-style structured :86: (/EREF/…//CNTP/…//REMI/…/)
_ING_KEYS = ("EREF", "CNTP", "REMI", "PREF", "RTRN", "MARF", "CSID", "BUSP", "PURP", "ULTC", "ULTD", "ULTB",
             "ISDT", "IREF", "BENM", "ORDP", "NAME", "ADDR", "TRCD", "SUM", "CDTRREF", "CDTRREFTP", "CREF")
_ING_RE = re.compile(r"/(" + "|".join(_ING_KEYS) + r")/")
_NOT_PROVIDED = {"", "NONREF", "NOTPROVIDED"}


@dataclass
class _Tag:
    name: str
    line: int
    lines: list[str] = field(default_factory=list)

    def value(self) -> str:
        first, rest = self.lines[0], self.lines[1:]
        if self.name == "61":
            return _statement_line(first, rest)
        if self.name != "86":
            return first + "".join(line.strip() for line in rest)  # fixed fields never hold a line break
        if first.startswith("/") or re.match(r"^\d{3}\?", first) or "?20" in first:
            return first + "".join(rest)  # structured: the delimiters carry the structure, breaks are wraps
        text, width = first, len(first) + 4  # ":86:" counts in the first line's 65
        for line in rest:
            text += ("" if width >= LINE_LIMIT else "\n") + line
            width = len(line)
        return text.strip()


def _statement_line(first: str, rest: list[str]) -> str:
    """`:61:` is one line plus at most one 34x supplementary line; anything more is a wrap."""
    rest = [line.strip() for line in rest if line.strip()]
    if "//" in first:
        # The bank reference (16x) itself may be cut (ING: `…//00000000001` then `005`).
        while rest and "/" not in rest[0] and len(first.split("//", 1)[1] + rest[0]) <= 16:
            first += rest.pop(0)
    return first + ("\n" + "".join(rest) if rest else "")


@dataclass
class _Block:
    line: int
    tags: list[_Tag] = field(default_factory=list)


def _ends_message(lines: list[str], number: int) -> bool:
    """A lone `-` closes a message only before a tag, an envelope or the end (ING wraps a hyphen alone)."""
    following = next((line.strip() for line in lines[number:] if line.strip()), "")
    return not following or following.startswith(("{", "}", ":"))


def _blocks(text: str) -> Iterator[_Block]:
    """Statements as lists of tags, envelopes removed and wrapped lines attached to their tag."""
    block: _Block | None = None
    tag: _Tag | None = None
    lines = text.split("\n")
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        header = _HEADER_RE.match(line) if "{" in line else None
        if header:
            line = line[header.end():]
        ended = False
        trailer = _TRAILER_RE.search(line) if "}" in line else None
        if trailer:
            line, ended = line[:trailer.start()], True
        if line.strip() == "-" and _ends_message(lines, number):
            line, ended = "", True
        match = _TAG_RE.match(line)
        if match:
            if match["tag"] == "20" or block is None:
                if block is not None and block.tags:
                    yield block
                block = _Block(line=number)
            tag = _Tag(match["tag"], number, [match["value"].rstrip()])
            if tag.name == "86" and (not block.tags or block.tags[-1].name != "61"):
                tag.name = "86-statement"  # information about the statement, not about a movement
            block.tags.append(tag)
        elif line.strip():
            if tag is None:
                raise StatementError(f"text outside any MT940 tag: {line.strip()[:40]!r}", line=number)
            tag.lines.append(line.rstrip())
        elif tag is not None and tag.name == "86":
            tag.lines.append("")  # a blank line inside :86: is a real break (ASN)
        if ended:
            tag = None
    if block is not None and block.tags:
        yield block


def _ing_fields(details: str) -> dict[str, str]:
    parts = _ING_RE.split(details)
    fields = {}
    for key, value in zip(parts[1::2], parts[2::2], strict=False):
        fields.setdefault(key, value.strip("/").strip())
    return fields


def _ing_remittance(value: str) -> str:
    for prefix in ("USTD//", "STRD/CUR/", "STRD/ISO/", "USTD/", "STRD/"):
        if value.startswith(prefix):
            return value[len(prefix):].strip("/ ")
    return value


def _record(transaction, *, account: str, currency: str, line: int, raw: str, details: str) -> StatementRecord:
    data = transaction.data
    status = (data.get("status") or "").upper()
    amount_text = raw.split("\n", 1)[0]
    try:
        amount = to_cents(Decimal(data["amount"].amount), line=line)
    except (InvalidOperation, KeyError, AttributeError):
        raise StatementError(f"unreadable amount in {amount_text!r}", line=line) from None
    booking = data.get("entry_date") or data.get("date")
    texts, payer_name, payer_iban, end_to_end = [], "", "", ""
    details = details.strip()  # our rejoined :86: (the library strips the leading blank of each line)
    if data.get("purpose") is not None or data.get("applicant_name") or data.get("end_to_end_reference"):
        # German structured :86: (?20…?29 purpose, ?31 IBAN, ?32/?33 name), split by the library.
        texts.append((data.get("purpose") or "").strip())
        payer_name = " ".join((data.get("applicant_name") or "").split())
        payer_iban = (data.get("applicant_iban") or "").replace(" ", "").upper()
        end_to_end = (data.get("end_to_end_reference") or "").strip()
        for key in ("posting_text", "additional_purpose", "recipient_name"):
            if data.get(key):
                texts.append(str(data[key]).strip())
    elif details.startswith("/"):
        fields = _ing_fields(details)
        texts.append(_ing_remittance(fields.get("REMI", "")))
        counterparty = fields.get("CNTP", "").split("/")
        if counterparty and _IBAN_RE.match(counterparty[0].replace(" ", "").upper()):
            payer_iban = counterparty[0].replace(" ", "").upper()
        payer_name = counterparty[2].strip() if len(counterparty) > 2 else ""
        end_to_end = fields.get("EREF", "")
        texts.append(details)
    elif details:
        texts.append(details)
    customer_reference = (data.get("customer_reference") or "").strip()
    extra_details = (data.get("extra_details") or "").strip()
    if not payer_iban and _IBAN_RE.match(customer_reference):
        # ASN Bank: the counterparty's IBAN as customer reference, the name as supplementary line.
        payer_iban, payer_name = customer_reference, payer_name or extra_details
    elif customer_reference.upper() not in _NOT_PROVIDED and customer_reference.upper() not in _ING_KEYS:
        texts.append(customer_reference)
    if end_to_end.upper() in _NOT_PROVIDED:
        end_to_end = ""
    elif end_to_end not in " ".join(texts):
        texts.append(end_to_end)
    bank_reference = (data.get("bank_reference") or "").strip()
    return StatementRecord(
        account=account, booking_date=booking, value_date=data.get("date"), amount=amount,
        currency=(data["amount"].currency or currency or "").upper(),
        bank_reference="" if bank_reference.upper() in _NOT_PROVIDED else bank_reference,
        payer_name=payer_name, payer_iban=payer_iban, texts=tuple(dict.fromkeys(t for t in texts if t)),
        raw=raw, line=line,
        extra={"reversal": status.startswith("R"), "mark": status, "transaction_type": data.get("id") or "",
               "end_to_end_id": end_to_end, "supplementary": extra_details,
               "customer_reference": customer_reference},
    )


def _check_statement_line(tag: _Tag) -> None:
    value = tag.value()
    match = _STATEMENT_LINE_RE.match(value)
    if not match:
        raise StatementError(f"unreadable :61: statement line {value.partition(chr(10))[0]!r}", line=tag.line)
    if not _AMOUNT_RE.match(match["amount"]):
        raise StatementError(f"unreadable amount {match['amount']!r} in :61:", line=tag.line)
    # Day 30 of February is fine (some banks count 30-day months; the library moves it to the 28th/29th).
    if not (1 <= int(match["month"]) <= 12 and 1 <= int(match["day"]) <= 31):
        raise StatementError(f"unreadable value date {value[:6]!r} in :61: (YYMMDD)", line=tag.line)


def parse(data: bytes, *, encoding: str | None = None, **options) -> Iterator[StatementRecord]:
    """Each `:61:` movement of every statement in an MT940 file, in file order.

    `encoding`: the file's charset; by default UTF-8 if the file decodes as such, else Latin-1.
    """
    if options:
        raise StatementError(f"mt940 takes only `encoding`, got {sorted(options)}")
    if not data.strip():
        raise StatementError("empty file")
    if encoding:
        text = decode(data, encoding)
    else:
        try:
            text = decode(data, "utf-8")
        except StatementError:
            text = data.decode("latin-1")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    found = False
    for block in _blocks(text):
        names = {tag.name for tag in block.tags}
        if "20" not in names and "61" not in names:
            continue
        found = True
        statement_lines = [tag for tag in block.tags if tag.name == "61"]
        for tag in statement_lines:
            _check_statement_line(tag)
        source = "\n".join(f":{tag.name}:{tag.value()}" for tag in block.tags if tag.name != "86-statement")
        try:
            statement = mt940_library.parse(source, options=OPTIONS, tags={61: mt940_tags.StatementGLS()})
        except Exception as exc:  # the library raises RuntimeError, ValueError, InvalidOperation…
            raise StatementError(f"unreadable MT940 statement: {exc}", line=block.line) from None
        transactions = list(statement)
        if len(transactions) != len(statement_lines):
            raise StatementError(
                f"{len(statement_lines)} :61: lines but {len(transactions)} movements read", line=block.line)
        account = (statement.data.get("account_identification") or "").strip()
        currency = statement.currency or ""
        details_of = {id(tag): following.value() for tag, following in zip(block.tags, block.tags[1:], strict=False)
                      if tag.name == "61" and following.name == "86"}
        for transaction, tag in zip(transactions, statement_lines, strict=True):
            details = details_of.get(id(tag), "")
            raw = f":61:{tag.value()}" + (f"\n:86:{details}" if details else "")
            yield _record(transaction, account=account, currency=currency, line=tag.line, raw=raw, details=details)
    if not found:
        raise StatementError("not an MT940 statement (no :20: or :61: tag)", line=1)
