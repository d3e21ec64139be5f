"""Bank statement import: a generated camt.053 against pending transfer pledges, end to end.

    .venv/bin/python bench/statements.py [--lines 100000] [--small 10000] [--pledges 50000] [--tasks 1] [--profile]

A throw-away PostgreSQL database (bench/harness.py) gets `--pledges` pending bank-transfer
pledges (bulk-inserted: setup, not measured). Files are generated on disk: of their lines, 30 %
carry a pledge's reference as banks print it (lower case, spaces, a line break), 10 % carry no
reference but the pledge's exact amount and its donor's name (matched by suggestion), the rest
are debits and unrelated credits. Each measure runs in a fresh Python process: parse alone, then
the import service (parse + store in one transaction), then the matching service (the code a
worker runs) in `--tasks` processes at once, as STATEMENT_MATCH_TASKS sends it. Printed: times,
lines/s, SQL statements, the peak RSS above the process's baseline after Django setup and reading
the file (parse + store), the matching process's peak RSS above its start, and a SELECT 1 round
trip as the database's reference. The small file runs first (its
own pledges), then the big one, then the big one again (must add nothing), then the same
movements in other bytes. Reference in the same run: parse alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BenchDatabase, bench_env, django_run  # noqa: E402

FIRST = ["Marie", "Jean", "Louise", "Pierre", "Camille", "Lucas", "Emma", "Hugo", "Léa", "Jules", "Chloé", "Louis",
         "Inès", "Gabriel", "Manon", "Arthur", "Zoé", "Raphaël", "Alice", "Adam"]
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
        "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier"]

SETUP = """
import json, random
from django.db import transaction
from django.utils import timezone
from campaigns.models import Campaign, CampaignTotal, Donation
from campaigns.services.ledger import donor_key_for
from campaigns.references import reference_generate
from bench.statements import names
NAMES = names({pledges})
random.seed(7)
campaign = Campaign.objects.get(slug="bench")
rows, seen = [], set()
for i in range({pledges}):
    reference = reference_generate()
    while reference in seen:
        reference = reference_generate()
    seen.add(reference)
    rows.append(Donation(campaign=campaign, source="bank", external_id=reference, reference=reference,
        amount_minor=500 + (i * 7919) % 200000, currency="EUR", donor_name=NAMES[i],
        donor_email=f"donor{{i}}@example.org", donor_key=donor_key_for(email=f"donor{{i}}@example.org")))
with transaction.atomic():
    Donation.objects.bulk_create(rows, batch_size=5000)
    CampaignTotal.objects.filter(campaign=campaign).update(pending_minor=sum(r.amount_minor for r in rows))
# Statistics, as a database where the pledges arrived over weeks has them (autovacuum): without
# them PostgreSQL takes 50,000 pledges for 15 and looks pledges up by amount through the
# idempotency key instead of the partial index donation_bank_payable_amount (24 ms vs 0.5 ms).
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("ANALYZE campaigns_donation")
print(json.dumps([[d.reference, d.amount_minor, d.donor_name] for d in rows]))
"""

MEASURE = """
import json, resource, time
from campaigns.bank import parse_statement
from campaigns.models import StatementLine
from campaigns.services import statements, statement_matching

from django.db import connection

def _status_mb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024

def peak_start():
    # The RSS now, with the peak reset to it (Linux: clear_refs 5), so an earlier transient peak
    # (Django's start) cannot hide the measured work's; elsewhere the high-water mark so far.
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return _status_mb("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def peak_mb():
    try:
        return _status_mb("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

queries = [0]
sql_time = {{}}  # --profile: seconds per statement shape (its first 90 characters)
def count(execute, sql, params, many, context):
    queries[0] += 1
    if not {profile!r}:
        return execute(sql, params, many, context)
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        shape = sql[:90]
        spent, n = sql_time.get(shape, (0.0, 0))
        sql_time[shape] = (spent + time.perf_counter() - started, n + 1)
connection.execute_wrappers.append(count)

data = open({path!r}, "rb").read()
baseline = peak_start()
result = {{"file_mb": len(data) / 1e6}}
if {parse_only}:
    # The reference for the database's share: one round trip, measured in this same run.
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for _ in range(2000):
            cursor.execute("SELECT 1")
        result["roundtrip_ms"] = (time.perf_counter() - started) / 2000 * 1000
    started = time.perf_counter()
    result["records"] = sum(1 for _ in parse_statement(data, format="camt053"))
    result["parse_s"] = time.perf_counter() - started
else:
    started = time.perf_counter()
    imported = statements.statement_import(data=data, file_name={name!r}, format="camt053")
    result["store_s"] = time.perf_counter() - started
    result["store_queries"], queries[0] = queries[0], 0
    result["lines_read"], result["lines_new"] = imported.lines_read, imported.lines_new
    with connection.cursor() as cursor:  # the round trip right now, the matching's reference
        started = time.perf_counter()
        for _ in range(500):
            cursor.execute("SELECT 1")
        result["roundtrip_ms"] = (time.perf_counter() - started) / 500 * 1000
    # The workers' code, in {tasks} processes at once as STATEMENT_MATCH_TASKS sends it: each
    # claims batches with SKIP LOCKED (forked after closing the connection: each opens its own).
    import multiprocessing
    def match(import_id):
        queries[0] = 0
        # The forked child's own peak above its RSS at the start: the matching's memory (the
        # parent's figure does not include it).
        match_baseline = peak_start()
        if {profile!r}:  # --profile: cProfile of the matching, top functions written beside the file
            import cProfile, io, os, pstats
            profiler = cProfile.Profile()
            profiler.runcall(statement_matching.statement_import_match, import_id=import_id)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            for shape, (spent, n) in sorted(sql_time.items(), key=lambda item: -item[1][0])[:15]:
                out.write(f"SQL {{spent:8.2f}}s {{n:6}}x  {{shape}}\\n")
            open({profile!r} + f".{{os.getpid()}}.txt", "w").write(out.getvalue())
        else:
            statement_matching.statement_import_match(import_id=import_id)
        return queries[0], peak_mb() - match_baseline
    connection.close()
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool({tasks}) as pool:
        counts = pool.map(match, [imported.statement_import.pk] * {tasks})
    result["match_s"] = time.perf_counter() - started
    result["match_queries"] = sum(n for n, _peak in counts)
    result["match_peak_rss_mb"] = max(peak for _n, peak in counts)
    summary = statements.statement_import_summary(import_id=imported.statement_import.pk)
    result["outcomes"] = {{k: v["count"] for k, v in summary["outcomes"].items()}}
    result["by"] = dict(StatementLine.objects.filter(statement_import=imported.statement_import)
        .exclude(matched_by="").values_list("matched_by").annotate(n=__import__("django").db.models.Count("id")))
result["peak_rss_above_baseline_mb"] = peak_mb() - baseline
print(json.dumps(result))
"""


def names(count: int) -> list[str]:
    rng = random.Random(11)
    # Mostly distinct donors; a first and last name plus a middle initial, as banks print them.
    return [f"{rng.choice(FIRST)} {chr(65 + i % 26)}. {rng.choice(LAST)}" for i in range(count)]


def entry(amount_minor: int, credit: bool, text: str, payer: str, day: str, n: int) -> str:
    role = "Dbtr" if credit else "Cdtr"
    return (
        f'<Ntry><Amt Ccy="EUR">{amount_minor // 100}.{amount_minor % 100:02d}</Amt>'
        f"<CdtDbtInd>{'CRDT' if credit else 'DBIT'}</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>{day}</Dt></BookgDt>"
        f"<ValDt><Dt>{day}</Dt></ValDt><AcctSvcrRef>B{n:09d}</AcctSvcrRef><NtryDtls><TxDtls><RltdPties>"
        f"<{role}><Nm>{payer}</Nm></{role}></RltdPties><RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls>"
        "</Ntry>\n"
    )


def generate(path: Path, *, lines: int, pledges: list, first_pledge: int, day: str, seed: int) -> None:
    rng = random.Random(seed)
    by_reference, by_suggestion = int(lines * 0.30), int(lines * 0.10)
    with path.open("w") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
                  'camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>bench</MsgId></GrpHdr><Stmt><Id>1</Id>'
                  "<Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id></Acct>\n")
        for n in range(lines):
            if n < by_reference:
                reference, amount, name = pledges[first_pledge + n]
                code = reference.lower().replace("-", " ")
                out.write(entry(amount, True, f"VIR SEPA {name.upper()} {code[:6]}\n{code[6:]}", name.upper(), day, n))
            elif n < by_reference + by_suggestion:
                reference, amount, name = pledges[first_pledge + n]
                out.write(entry(amount, True, "VIREMENT DON", name.upper(), day, n))
            elif n % 2:
                out.write(entry(rng.randrange(100, 500000), False, f"PRLV SEPA FOURNISSEUR {n}", "FOURNISSEUR", day, n))
            else:
                out.write(entry(rng.randrange(100, 500000), True, f"REMISE CHEQUE {n}", "CLIENT DIVERS", day, n))
        out.write("</Stmt></BkToCstmrStmt></Document>\n")


def measure(env: dict, path: Path, parse_only: bool = False, tasks: int = 1, profile: str = "") -> dict:
    code = MEASURE.format(path=str(path), name=path.name, parse_only=parse_only, tasks=tasks, profile=profile)
    started = time.perf_counter()
    result = json.loads(django_run(env, code, timeout=1800).strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--pledges", type=int, default=50_000)
    parser.add_argument("--tasks", type=int, default=1, help="matching processes at once (STATEMENT_MATCH_TASKS)")
    parser.add_argument("--profile", action="store_true", help="cProfile the matching of the big file")
    args = parser.parse_args()
    if int(args.lines * 0.4) + int(args.small * 0.4) > args.pledges:
        parser.error("not enough pledges for both files' matches")
    tmp = Path(tempfile.mkdtemp(prefix="jauge-bench-statements-"))
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores, shared); "
          f"matching in {args.tasks} process(es)")
    with BenchDatabase() as db:
        env = bench_env(db.url, None, STATEMENT_MAX_BYTES=str(1 << 30))
        db.migrate(env)
        db.create_campaign(env, slug="bench")
        started = time.perf_counter()
        code = SETUP.format(pledges=args.pledges)
        pledges = json.loads(django_run(env, code, timeout=1800).strip().splitlines()[-1])
        print(f"setup: {args.pledges} pending bank pledges in {time.perf_counter() - started:.1f}s")
        from datetime import date

        day = date.today().isoformat()
        small, big, overlap = tmp / "small.xml", tmp / "big.xml", tmp / "big-again.xml"
        generate(small, lines=args.small, pledges=pledges, first_pledge=int(args.lines * 0.4), day=day, seed=1)
        generate(big, lines=args.lines, pledges=pledges, first_pledge=0, day=day, seed=2)
        # The same movements in other bytes (a bank's export made again): parsed, every line looked up.
        overlap.write_bytes(big.read_bytes().replace(b"<MsgId>bench</MsgId>", b"<MsgId>bench-2</MsgId>"))

        rows = []
        for label, path, parse_only in (("parse only (reference)", big, True), (f"import {args.small}", small, False),
                                        (f"import {args.lines}", big, False), (f"re-import {args.lines}", big, False),
                                        ("same lines, other bytes", overlap, False)):
            profile = str(tmp / "profile") if args.profile and path == big and label.startswith("import") else ""
            result = measure(env, path, parse_only, args.tasks, profile)
            if profile:
                print(f"{'':<24} profile of the matching: {profile}.<pid>.txt")
            rows.append((label, result))
            total = result.get("parse_s") or result["store_s"] + result["match_s"]
            lines = result.get("records") or result["lines_read"]
            print(f"{label:<24} file {result['file_mb']:6.1f} MB  "
                  + (f"parse {result['parse_s']:6.1f}s" if parse_only else
                     f"store {result['store_s']:6.1f}s  match {result['match_s']:6.1f}s  new {result['lines_new']:>7}")
                  + f"  total {total:6.1f}s  {lines / total:8.0f} lines/s"
                  + (f"  (SELECT 1 round trip {result['roundtrip_ms']:.2f} ms)" if parse_only else "")
                  + f"  peak RSS +{result['peak_rss_above_baseline_mb']:.0f} MB"
                  + ("" if parse_only else f" (matching +{result['match_peak_rss_mb']:.0f} MB)"))
            if not parse_only:
                print(f"{'':<24} outcomes {result['outcomes']}  matched by {result['by']}")
                expected_s = max(result["match_queries"] * result["roundtrip_ms"] / 1e3, 1e-9)
                print(f"{'':<24} SQL statements: store {result['store_queries']}, match {result['match_queries']} "
                      f"({result['match_queries'] / max(result['lines_new'], 1):.2f} per new line); SELECT 1 round "
                      f"trip just before matching {result['roundtrip_ms']:.2f} ms; match time / (statements x round "
                      f"trip) = {result['match_s'] / expected_s:.1f}")
        parse_s = rows[0][1]["parse_s"]
        big_row = rows[2][1]
        print(f"end to end / parse alone: {(big_row['store_s'] + big_row['match_s']) / parse_s:.1f}x; "
              f"peak RSS {args.lines} vs {args.small}: import +{big_row['peak_rss_above_baseline_mb']:.0f} MB vs "
              f"+{rows[1][1]['peak_rss_above_baseline_mb']:.0f} MB, matching +{big_row['match_peak_rss_mb']:.0f} MB "
              f"vs +{rows[1][1]['match_peak_rss_mb']:.0f} MB (files {big_row['file_mb']:.0f} MB vs "
              f"{rows[1][1]['file_mb']:.0f} MB, held whole: the parser API takes bytes)")
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
