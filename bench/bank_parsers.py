"""Statement parsers alone (no database): time, lines/s and peak memory per format and size.

    .venv/bin/python bench/bank_parsers.py [--sizes 10000 100000]

Each measure runs in a fresh Python process reading a generated file from disk, so its peak
RSS above the baseline (file already read) is the parser's own. Printed per format and size:
lines, MB, seconds, lines/s, the ratio to a bare reference measured in the same run (camt.053:
lxml `iterparse` over the same file, clearing as it goes; the text formats: splitting the
decoded text into lines), and the peak RSS growth. camt.053's memory must stay flat: the
100,000-entry peak ≈ the 10,000-entry peak (the file itself aside).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CAMT_ENTRY = (
    '<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
    "<BookgDt><Dt>2026-11-28</Dt></BookgDt><ValDt><Dt>2026-11-28</Dt></ValDt><AcctSvcrRef>R{i}</AcctSvcrRef>"
    "<NtryDtls><TxDtls><Refs><EndToEndId>E2E{i}</EndToEndId></Refs><RltdPties><Dbtr><Pty><Nm>Donor {i}</Nm></Pty>"
    "</Dbtr><DbtrAcct><Id><IBAN>FR7630004000031234567890143</IBAN></Id></DbtrAcct></RltdPties>"
    "<RmtInf><Ustrd>DON JAUGE jg-7k3f</Ustrd><Ustrd>9xa numero {i}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>\n"
)


def camt053(n: int) -> bytes:
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
            "<BkToCstmrStmt><Stmt><Id>BENCH</Id><Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id></Acct>\n")
    body = "".join(CAMT_ENTRY.format(i=i, amount=f"{i % 500 + 1}.{i % 100:02d}") for i in range(n))
    return (head + body + "</Stmt></BkToCstmrStmt></Document>\n").encode()


def mt940(n: int) -> bytes:
    body = "".join(f":61:2611281128C{i % 500 + 1},{i % 100:02d}NTRFNONREF//REF{i}\n"
                   f":86:166?00GUTSCHRIFT?20SVWZ+DON JAUGE JG-7K3F?219XA NUMERO {i}?32DONOR {i}\n" for i in range(n))
    return (":20:BENCH\n:25:FR7630006000011234567890189\n:28C:1/1\n:60F:C261127EUR0,00\n" + body
            + ":62F:C261130EUR0,00\n-\n").encode()


def _cfonb_record(code: str, *, amount: str = "", label: str = "", qualifier: str = "", info: str = "") -> str:
    line = [" "] * 120

    def put(column: int, text: str) -> None:  # 1-based, as the standard counts
        line[column - 1:column - 1 + len(text)] = text

    put(1, code), put(3, "30004"), put(8, "0123"), put(12, "00001"), put(17, "EUR2"), put(22, "00012345678")
    put(35, "281126")
    if code == "05":
        put(46, qualifier), put(49, info)
    else:
        put(91, amount)
    if code == "04":
        put(43, "281126"), put(49, label[:31])
    return "".join(line)


def cfonb120(n: int) -> bytes:
    lines = [_cfonb_record("01", amount="0000000000000{")]
    for i in range(n):
        lines.append(_cfonb_record("04", amount=f"{i % 100000:013d}" + "{ABCDEFGHI"[i % 10], label=f"VIR DONOR {i}"))
        lines.append(_cfonb_record("05", qualifier="LIB", info="DON JAUGE JG-7K3F9XA"))
    lines.append(_cfonb_record("07", amount="0000000000000{"))
    return ("\n".join(lines) + "\n").encode("latin-1")


def csv(n: int) -> bytes:
    rows = "".join(f"28/11/2026;VIR SEPA DONOR {i} DON JAUGE JG-7K3F9XA;;{i % 500 + 1},{i % 100:02d}\n"
                   for i in range(n))
    return ("Date;Libellé;Débit;Crédit\n" + rows).encode("utf-8")


GENERATORS = {"camt053": camt053, "mt940": mt940, "cfonb120": cfonb120, "csv": csv}

MEASURE = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
data = open({path!r}, "rb").read()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if {reference!r}:
    if {fmt!r} == "camt053":
        import io
        from lxml import etree
        count = 0
        for _, elem in etree.iterparse(io.BytesIO(data), events=("end",), tag="{{*}}Ntry"):
            count += 1
            elem.clear()
            while elem.getprevious() is not None:
                del elem.getparent()[0]
    else:
        count = len(data.decode("utf-8", "replace").split("\\n"))
else:
    from campaigns.bank import parse_statement
    options = {{"profile": "fr-generic"}} if {fmt!r} == "csv" else {{}}
    count = sum(1 for _ in parse_statement(data, format={fmt!r}, **options))
seconds = time.perf_counter() - started
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps({{"count": count, "seconds": seconds, "rss_growth_mb": growth}}))
"""


def measure(fmt: str, path: Path, *, reference: bool) -> dict:
    code = MEASURE.format(root=str(ROOT), path=str(path), fmt=fmt, reference=reference)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=900)
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--formats", nargs="+", default=list(GENERATORS))
    args = parser.parse_args()
    print(f"{'format':9} {'lines':>8} {'MB':>6} {'s':>7} {'lines/s':>9} {'× ref':>6} {'RSS+ MB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for fmt in args.formats:
            for size in args.sizes:
                path = Path(folder) / f"{fmt}-{size}"
                path.write_bytes(GENERATORS[fmt](size))
                ours = measure(fmt, path, reference=False)
                floor = measure(fmt, path, reference=True)
                if ours["count"] != size:
                    print(f"  {fmt} {size}: parsed {ours['count']} lines, expected {size}")
                    return 1
                print(f"{fmt:9} {size:>8} {path.stat().st_size / 2**20:>6.1f} {ours['seconds']:>7.2f} "
                      f"{size / ours['seconds']:>9.0f} {ours['seconds'] / max(floor['seconds'], 1e-6):>6.1f} "
                      f"{ours['rss_growth_mb']:>8.1f}", flush=True)
                path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
