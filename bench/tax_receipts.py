"""The yearly run of French tax receipts: 5,000 vs 50,000 monthly donors (12 instalments each).

    .venv/bin/python bench/tax_receipts.py [--small 5000] [--big 50000] [--pdfs 20]

A throw-away PostgreSQL database (bench/harness.py) gets `--small` monthly donors in 2024 and
`--big` in 2025, each with 12 confirmed instalments carrying a postal address (copied in SQL from
one donation recorded through the ledger service). Each year's run is measured in a fresh Python
process: `tax_receipt_run_start` then the run's steps in that process (what the Celery task runs,
batch after batch of TAX_RECEIPTS_BATCH donors: lock their donations, lock the year's number row,
insert receipts and lines, commit). Printed: receipts, seconds, receipts/s, peak RSS above the
process's baseline, and the check that the numbers are exactly 1..N.

What it does not measure: PDFs. A receipt's PDF is rendered from the immutable receipt on demand
(donor link, admin); `--pdfs` renders that many and prints the time per PDF, to say what
rendering them all up front would have cost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psycopg import sql  # noqa: E402

from bench.harness import BenchDatabase, bench_env, django_run  # noqa: E402

SETTINGS = """
from campaigns.models import TaxReceiptSettings
TaxReceiptSettings.objects.update_or_create(pk=1, defaults=dict(
    enabled=True, legal_name="Le Journal Indépendant SAS", address="12 rue des Imprimeurs\\n75011 Paris",
    siren="123456789", signatory="Camille Martin, directrice de la publication", reduction_rate_percent=66))
"""

TEMPLATE = """
from datetime import datetime
from django.utils import timezone
from campaigns.models import Campaign
from campaigns.services import ledger
campaign = Campaign.objects.get(pk={campaign_id})
at = datetime({year}, 1, 5, 12, tzinfo=timezone.get_current_timezone())
donation, _ = ledger.donation_record(campaign=campaign, source="generic", external_id="template-{year}",
    amount_minor=1500, at=at, occurred_at=at, frequency="monthly", donor_email="template-{year}@example.org",
    donor_name="Marie Curie", donor_address="3 rue de l'Estrapade", donor_postal_code="75005", donor_city="Paris")
print(donation.pk)
"""

MEASURE = """
import resource, time
from campaigns.models import TaxReceipt, TaxReceiptSequence
from campaigns.services import tax_receipts

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

TaxReceipt.objects.exists()  # connection and imports before the baseline
baseline = rss_mb()
started = time.perf_counter()
run = tax_receipts.tax_receipt_run_start(year={year})
counted = time.perf_counter() - started
while not tax_receipts.tax_receipt_run_step(run_id=run.pk, seconds=60):
    pass
elapsed = time.perf_counter() - started
run.refresh_from_db()
numbers = list(TaxReceipt.objects.filter(year={year}).order_by("sequence").values_list("sequence", flat=True))
last = TaxReceiptSequence.objects.get(year={year}).last_number
gapless = numbers == list(range(1, last + 1))
print(run.issued, run.to_do, elapsed, counted, baseline, rss_mb(), gapless)
"""

PDFS = """
import statistics, time
from campaigns.models import TaxReceipt
from campaigns.selectors.tax_receipts import tax_receipt_pdf
receipts = list(TaxReceipt.objects.order_by("pk")[:{count}])
tax_receipt_pdf(receipts[0])  # fonts and templates loaded once
times, size = [], 0
for receipt in receipts:
    started = time.perf_counter()
    size += len(tax_receipt_pdf(receipt))
    times.append(time.perf_counter() - started)
print(statistics.median(times), max(times), size / len(receipts))
"""


def insert_donors(db: BenchDatabase, env: dict[str, str], *, campaign_id: int, donors: int, year: int) -> None:
    """`donors` monthly donors of `year`, 12 confirmed instalments each, copied from a template."""
    template_id = int(django_run(env, TEMPLATE.format(campaign_id=campaign_id, year=year)).split()[-1])
    with db.connect() as conn:
        cols = db._columns(conn, "campaigns_donation")
        overrides = {
            "external_id": sql.SQL("{} || g::text").format(sql.Literal(f"y{year}-")),
            "donor_key": sql.SQL("{} || (g / 12)::text").format(sql.Literal(f"e:y{year}-")),
            "donor_name": sql.SQL("'Donateur ' || (g / 12)::text"),
            "occurred_at": sql.SQL("make_timestamptz({}, 1 + g %% 12, 5, 12, 0, 0, 'Europe/Paris')").format(
                sql.Literal(year)),
            "confirmed_at": sql.SQL("make_timestamptz({}, 1 + g %% 12, 5, 12, 0, 0, 'Europe/Paris')").format(
                sql.Literal(year)),
            "reference": sql.NULL,
        }
        select = sql.SQL(", ").join(overrides.get(c, sql.SQL("t.") + sql.Identifier(c)) for c in cols)
    # The template only gives every column a valid value: copied donors × 12 times, then dropped
    # (ledger entries are not needed: receipts read each donation's balance, kept beside the ledger).
    with db.connect() as conn:
        conn.execute(
            sql.SQL("INSERT INTO campaigns_donation ({cols}) SELECT {select} "
                    "FROM campaigns_donation t, generate_series(0, %s) g WHERE t.id = %s").format(
                cols=sql.SQL(", ").join(map(sql.Identifier, cols)), select=select),
            (donors * 12 - 1, template_id),
        )
        conn.execute("DELETE FROM campaigns_ledgerentry WHERE donation_id = %s", (template_id,))
        conn.execute("DELETE FROM campaigns_donation WHERE id = %s", (template_id,))
        conn.execute("ANALYZE campaigns_donation")


def measure(env: dict[str, str], year: int) -> dict:
    out = django_run(env, MEASURE.format(year=year), timeout=3600).strip().splitlines()[-1].split()
    issued, to_do = int(out[0]), int(out[1])
    elapsed, counted, baseline, peak = (float(x) for x in out[2:6])
    return {"issued": issued, "to_do": to_do, "seconds": elapsed, "count_seconds": counted,
            "baseline_mb": baseline, "peak_mb": peak, "growth_mb": peak - baseline, "gapless": out[6] == "True"}


def show(label: str, m: dict) -> None:
    print(f"{label:>5}: {m['issued']:>7,} yearly receipts ({m['issued'] * 12:,} instalments) in {m['seconds']:6.1f} s "
          f"({m['issued'] / m['seconds']:,.0f}/s; counting {m['count_seconds']:.1f} s)  peak RSS "
          f"{m['peak_mb']:.1f} MB (+{m['growth_mb']:.1f} MB over the {m['baseline_mb']:.1f} MB baseline)  "
          f"gapless: {m['gapless']}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--big", type=int, default=50_000)
    parser.add_argument("--pdfs", type=int, default=20)
    args = parser.parse_args()
    with BenchDatabase() as db:
        env = bench_env(db.url, None)
        db.migrate(env)
        django_run(env, SETTINGS)
        campaign_id = db.create_campaign(env, slug="receipts")
        print(f"inserting {args.small:,} + {args.big:,} monthly donors × 12 instalments…", flush=True)
        insert_donors(db, env, campaign_id=campaign_id, donors=args.small, year=2024)
        insert_donors(db, env, campaign_id=campaign_id, donors=args.big, year=2025)
        small = measure(env, 2024)
        show("small", small)
        big = measure(env, 2025)
        show("big", big)
        median, worst, size = (float(x) for x in django_run(env, PDFS.format(count=args.pdfs)).split()[-3:])
    print(f"donors ×{big['issued'] / small['issued']:.0f} → time ×{big['seconds'] / small['seconds']:.1f}, "
          f"memory growth {small['growth_mb']:.1f} → {big['growth_mb']:.1f} MB "
          f"({'flat' if big['growth_mb'] < small['growth_mb'] + 20 else 'NOT flat'}); "
          f"target: {args.big:,} in under 600 s: {'met' if big['seconds'] < 600 else 'MISSED'}")
    print(f"PDF on demand: median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms, {size / 1024:.0f} KiB each "
          f"(all {args.big:,} up front would take about {args.big * median / 60:.0f} min on one core)")
    ok = big["issued"] == args.big and small["issued"] == args.small and big["gapless"] and small["gapless"]
    return 0 if ok and big["seconds"] < 600 else 1


if __name__ == "__main__":
    sys.exit(main())
