"""camt.053 (ISO 20022 bank-to-customer statement), streamed with lxml's iterparse.

Stand-in of the `statements` branch (one record per entry, the entry amount authoritative):
the `bank-parsers` branch's full parser replaces this file with the same `parse` signature.
Elements are matched by local name, whatever the namespace (some banks send none).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from decimal import Decimal, InvalidOperation

from lxml import etree

from campaigns.bank.records import StatementError, StatementRecord


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element, name: str):
    # "{*}" matches the name in any namespace or none (some banks send none).
    return list(element.iterchildren("{*}" + name))


def _find(element, *path: str):
    for name in path:
        if element is None:
            return None
        found = _children(element, name)
        element = found[0] if found else None
    return element


def _text(element, *path: str) -> str:
    found = _find(element, *path)
    return (found.text or "").strip() if found is not None else ""


def _iter(element, name: str):
    return element.iter("{*}" + name)


def _date(element, name: str, line: int) -> date | None:
    holder = _find(element, name)
    if holder is None:
        return None
    value = _text(holder, "Dt") or _text(holder, "DtTm")[:10]
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise StatementError(f"unreadable date {value!r} in <{name}>", line=line) from None


def _party(entry, role: str) -> tuple[str, str]:
    for details in _iter(entry, "RltdPties"):
        party = _find(details, role)
        if party is None:
            continue
        name = _text(party, "Nm") or _text(party, "Pty", "Nm")  # v08 nests the party
        account = _find(details, f"{role}Acct", "Id")
        iban = _text(account, "IBAN") if account is not None else ""
        return name, iban
    return "", ""


def _entry_record(entry, account: str) -> StatementRecord:
    line = entry.sourceline
    amount_element = _find(entry, "Amt")
    if amount_element is None:
        raise StatementError("entry without an amount", line=line, element="Ntry")
    try:
        amount = Decimal((amount_element.text or "").strip())
    except InvalidOperation:
        raise StatementError(f"unreadable amount {amount_element.text!r}", line=line) from None
    if not amount.is_finite() or amount < 0:
        raise StatementError(f"unreadable amount {amount_element.text!r}", line=line)
    indicator = _text(entry, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise StatementError(f"credit/debit indicator {indicator!r}", line=line)
    booking = _date(entry, "BookgDt", line) or _date(entry, "ValDt", line)
    if booking is None:
        raise StatementError("entry without a booking date", line=line)
    texts = [(u.text or "").strip() for u in _iter(entry, "Ustrd")]
    texts += [(r.text or "").strip() for r in _iter(entry, "Ref") if _local(r.getparent().tag) == "CdtrRefInf"]
    texts += [(t.text or "").strip() for t in _iter(entry, "AddtlTxInf")]
    texts.append(_text(entry, "AddtlNtryInf"))
    name, iban = _party(entry, "Dbtr" if indicator == "CRDT" else "Cdtr")
    return StatementRecord(
        account=account,
        booking_date=booking,
        value_date=_date(entry, "ValDt", line),
        amount=amount if indicator == "CRDT" else -amount,
        currency=amount_element.get("Ccy", ""),
        bank_reference=_text(entry, "AcctSvcrRef"),
        payer_name=name,
        payer_iban=iban,
        texts=tuple(t for t in texts if t),
        raw=etree.tostring(entry, encoding="unicode"),
        line=line,
    )


def parse(data: bytes, **options) -> Iterator[StatementRecord]:
    if not data or data.isspace():  # (strip() would copy the whole file)
        raise StatementError("empty file")
    # XML markup is case-sensitive: these two are the only spellings (and no copy of the file).
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise StatementError("a DOCTYPE or entity declaration is refused (XML bomb, external entity)")
    account = ""
    events = etree.iterparse(
        io.BytesIO(data), events=("end",), tag=("{*}Acct", "{*}Ntry"), resolve_entities=False, no_network=True,
        load_dtd=False, huge_tree=False,
    )  # events for these two only: an event per element kept every element's memory (linear growth)
    try:
        for _event, element in events:
            name = _local(element.tag)
            if name == "Acct" and _local(element.getparent().tag) == "Stmt":
                account = _text(element, "Id", "IBAN") or _text(element, "Id", "Othr", "Id")
            elif name == "Ntry":
                yield _entry_record(element, account)
                element.clear()
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise StatementError(f"malformed or truncated XML: {exc.msg}", line=exc.lineno) from None
