"""progress.json req/s with 10 donations, then with 1,000,000 donations in the database.

    .venv/bin/python bench/progress.py [--big 1000000] [--seconds 8] [--rounds 2]

Reads are O(1) by design (a cached snapshot of the CampaignTotal counter, never a SUM), so the
ratio big/small must stay ≥ 0.9. gunicorn (2 sync workers) and wrk on loopback; each figure is
the best of `--rounds` alternated runs, so a neighbour's burst of CPU does not decide the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BenchDatabase, Gunicorn, RedisServer, bench_env, http_get, http_json, wrk  # noqa: E402

SMALL = 10


def _measure(url: str, seconds: int, etag: str | None = None) -> float:
    headers = {"If-None-Match": etag} if etag else None
    result = wrk(url, seconds=seconds, connections=16, threads=2, headers=headers)
    if result["non_2xx_3xx"] or result["socket_errors"]:
        raise RuntimeError(f"wrk saw errors:\n{result['raw']}")
    return result["requests_per_second"]


def run(big: int = 1_000_000, seconds: int = 8, rounds: int = 3) -> dict[str, object]:
    """Two databases side by side (10 and `big` donations), each behind its own gunicorn; the
    wrk runs alternate between them so that drift in the machine's load hits both alike."""
    figures: dict[str, object] = {}
    with BenchDatabase(f"jauge_bench_small_{os.getpid()}") as small_db, \
            BenchDatabase(f"jauge_bench_big_{os.getpid()}") as big_db, RedisServer() as redis:
        urls = {}
        with contextlib.ExitStack() as stack:
            for label, db, count in (("small", small_db, SMALL), ("big", big_db, big)):
                env = bench_env(db.url, redis.url, CACHE_KEY_PREFIX=f"jauge-bench-{label}-{os.getpid()}")
                db.migrate(env)
                campaign_id = db.create_campaign(env, slug="bench")
                started = time.monotonic()
                db.bulk_donations(campaign_id=campaign_id, count=count, env=env, tag=label)
                figures[f"insert_seconds_{label}"] = round(time.monotonic() - started, 1)
                figures[f"donations_{label}"] = db.scalar("SELECT count(*) FROM campaigns_donation")
                web = stack.enter_context(Gunicorn(env, workers=2))
                urls[label] = web.url + "/api/campaigns/bench/progress.json"
                assert http_json(urls[label])["donations"] == figures[f"donations_{label}"]
            etags = {label: http_get(url)[1]["ETag"] for label, url in urls.items()}
            results: dict[str, list[float]] = {key: [] for key in ("small_200", "big_200", "small_304", "big_304")}
            for _ in range(rounds):
                for label in ("small", "big"):
                    results[f"{label}_200"].append(_measure(urls[label], seconds))
                    results[f"{label}_304"].append(_measure(urls[label], seconds, etags[label]))
        best = {key: max(values) for key, values in results.items()}
        figures.update(
            {
                "req_per_s_small_200": best["small_200"],
                "req_per_s_big_200": best["big_200"],
                "ratio_200": round(best["big_200"] / best["small_200"], 3),
                "req_per_s_small_304": best["small_304"],
                "req_per_s_big_304": best["big_304"],
                "ratio_304": round(best["big_304"] / best["small_304"], 3),
                "all_rounds": {key: [round(v) for v in values] for key, values in results.items()},
                "load_average_1min": round(os.getloadavg()[0], 2),
            }
        )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = run(args.big, args.seconds, args.rounds)
    print("== progress.json: 10 vs 1,000,000 donations (gunicorn 2 sync workers, wrk -t2 -c16) ==")
    for key, value in figures.items():
        print(f"  {key:26} {value}")
    ok = figures["ratio_200"] >= 0.9
    print(f"  {'target ratio >= 0.9':26} {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
