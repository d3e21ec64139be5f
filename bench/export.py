"""Streaming CSV export of donations: time and peak memory (RSS) for 100k and 1M rows.

    .venv/bin/python bench/export.py [--small 100000] [--big 1000000]

A throw-away PostgreSQL database (bench/harness.py) gets `--small` donations, then is grown to
`--big`. Each measure runs in a fresh Python process that logs in as a superuser and downloads
/admin/campaigns/donation/export.csv through Django's full stack (admin filters, streaming view),
counting bytes without keeping them. Printed: rows, MB, seconds, rows/s, and the peak RSS above
the process's baseline after Django setup. Memory must stay flat: the 1M peak ≈ the 100k peak.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BenchDatabase, bench_env, django_run  # noqa: E402

MEASURE = """
import resource, time
from django.contrib.auth.models import User
from django.test import Client

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
client = Client()
client.force_login(user)
client.get("/admin/campaigns/donation/")  # warm imports and templates before the baseline
baseline = rss_mb()
started = time.perf_counter()
response = client.get("/admin/campaigns/donation/export.csv")
assert response.status_code == 200 and response.streaming, response.status_code
size = lines = 0
for chunk in response.streaming_content:
    size += len(chunk)
    lines += chunk.count(b"\\n")
elapsed = time.perf_counter() - started
print(lines - 1, size, elapsed, baseline, rss_mb())
"""


def measure(env: dict[str, str]) -> dict[str, float]:
    out = django_run(env, MEASURE, timeout=1800).strip().splitlines()[-1].split()
    rows, size, elapsed, baseline, peak = int(out[0]), int(out[1]), float(out[2]), float(out[3]), float(out[4])
    return {"rows": rows, "mb": size / 1e6, "seconds": elapsed, "baseline_mb": baseline, "peak_mb": peak,
            "growth_mb": peak - baseline}


def show(label: str, m: dict[str, float]) -> None:
    print(f"{label:>5}: {m['rows']:>9,} rows  {m['mb']:7.1f} MB CSV  {m['seconds']:6.1f} s  "
          f"{m['rows'] / m['seconds']:9,.0f} rows/s  peak RSS {m['peak_mb']:6.1f} MB "
          f"(+{m['growth_mb']:.1f} MB over the {m['baseline_mb']:.1f} MB baseline)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    args = parser.parse_args()
    with BenchDatabase() as db:
        env = bench_env(db.url, None)
        db.migrate(env)
        campaign_id = db.create_campaign(env, slug="export")
        print(f"inserting {args.small:,} donations…", flush=True)
        db.bulk_donations(campaign_id=campaign_id, count=args.small, env=env, amount_minor=2550, tag="a")
        small = measure(env)
        show("small", small)
        print(f"growing to {args.big:,} donations…", flush=True)
        db.bulk_donations(campaign_id=campaign_id, count=args.big - args.small, env=env, amount_minor=2550, tag="b")
        big = measure(env)
        show("big", big)
    ratio = big["growth_mb"] / max(small["growth_mb"], 1.0)
    print(f"rows ×{big['rows'] / small['rows']:.1f} → memory growth ×{ratio:.2f} "
          f"({'flat' if big['growth_mb'] < small['growth_mb'] + 20 else 'NOT flat'}); "
          f"time ×{big['seconds'] / small['seconds']:.1f}")
    return 0 if big["rows"] == args.big else 1


if __name__ == "__main__":
    sys.exit(main())
