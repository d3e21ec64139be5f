"""Small camt.053 files written for the repository's tests (the real ones stay in shared/)."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

IBAN = "FR7630006000011234567890189"


@dataclass
class Entry:
    amount: str
    text: str = ""
    credit: bool = True
    date: str = "2026-11-30"
    payer: str = ""
    payer_iban: str = ""
    bank_reference: str = ""
    currency: str = "EUR"


def _entry(entry: Entry) -> str:
    role = "Dbtr" if entry.credit else "Cdtr"
    party = ""
    if entry.payer or entry.payer_iban:
        party = (f"<RltdPties><{role}><Nm>{escape(entry.payer)}</Nm></{role}>"
                 f"<{role}Acct><Id><IBAN>{entry.payer_iban}</IBAN></Id></{role}Acct></RltdPties>")
    remittance = f"<RmtInf><Ustrd>{escape(entry.text)}</Ustrd></RmtInf>" if entry.text else ""
    reference = f"<AcctSvcrRef>{entry.bank_reference}</AcctSvcrRef>" if entry.bank_reference else ""
    return (
        f'<Ntry><Amt Ccy="{entry.currency}">{entry.amount}</Amt><CdtDbtInd>{"CRDT" if entry.credit else "DBIT"}'
        f"</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>{entry.date}</Dt></BookgDt><ValDt><Dt>{entry.date}</Dt></ValDt>"
        f"{reference}<NtryDtls><TxDtls>{party}{remittance}</TxDtls></NtryDtls></Ntry>\n"
    )


def camt053(entries: list[Entry], *, iban: str = IBAN) -> bytes:
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>jauge-test</MsgId></GrpHdr><Stmt><Id>1</Id><Acct><Id><IBAN>{iban}</IBAN></Id></Acct>\n"
    )
    return (head + "".join(_entry(e) for e in entries) + "</Stmt></BkToCstmrStmt></Document>\n").encode()
