"""CPU per webhook event on the money path, in process: two checkouts A/B, rounds interleaved.

    .venv/bin/python bench/intake_cpu.py --a ../main --b . [--events 400] [--rounds 4] [--email]

What `bench/webhooks.py` measures end to end (HTTP, broker, worker) depends on the neighbours'
load on a shared machine; the CPU time of the service itself much less. For each checkout: its own
PostgreSQL database (migrated by that checkout) and one private redis-server for both; each round
runs, in a fresh process of each checkout in turn, `payment_event_receive` then
`payment_event_process` (commit, counter, ledger, the snapshot published to Redis) for N new
signed `donation.succeeded` events, and prints the CPU milliseconds per event of that process
(`time.process_time`) and the statements per event. Ratios are B over A per round; the median
counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BenchDatabase, RedisServer, bench_env  # noqa: E402

ROUND = r"""
import json, time
from django.db import connection
from django.test.utils import CaptureQueriesContext
from campaigns.models import Campaign, PaymentEvent
from campaigns.providers.generic import parse_body
from campaigns.services import intake

def body(i, email):
    return json.dumps({"id": f"evt_cpu_{START + i}", "type": "donation.succeeded", "data": {
        "donation_id": f"don_cpu_{START + i}", "campaign": "bench", "amount_minor": 500 + (i % 50) * 100,
        "currency": "EUR", "occurred_at": "2026-05-12T10:00:00Z",
        "donor": {"name": "Bench", "email": f"donor{(START + i) % 5000}@example.org" if email else "",
                  "anonymous": False}}}).encode()

def receive(i):
    raw = body(i, EMAIL)
    intake.payment_event_receive(provider="generic", event=parse_body(raw), body=raw, headers={})
    return PaymentEvent.objects.get(event_id=f"evt_cpu_{START + i}").pk

for i in range(WARMUP):
    intake.payment_event_process(event_id=receive(i))
ids = [receive(WARMUP + i) for i in range(EVENTS)]
with CaptureQueriesContext(connection) as queries:
    cpu, wall = time.process_time(), time.perf_counter()
    for event_id in ids:
        intake.payment_event_process(event_id=event_id)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({"cpu_ms": 1000 * cpu / EVENTS, "wall_ms": 1000 * wall / EVENTS,
                  "queries": len(queries.captured_queries) / EVENTS}))
"""

CAMPAIGN = r"""
from datetime import timedelta
from django.utils import timezone
from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_upsert
now = timezone.now()
campaign_upsert(slug="bench", defaults={"title": "Bench", "goal_minor": 100_000_000, "currency": "EUR",
                "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=30),
                "status": Campaign.Status.ACTIVE})
"""

PRELUDE = "import django, os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\ndjango.setup()\n"


def _python(root: Path) -> str:
    venv = root / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _run(root: Path, env: dict[str, str], code: str) -> str:
    result = subprocess.run([_python(root), "-c", PRELUDE + code], cwd=root, env=env, capture_output=True,
                            text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"{root}: {result.stderr[-3000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="reference checkout")
    parser.add_argument("--b", type=Path, required=True, help="checkout compared with it")
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--email", action="store_true", help="donors with e-mail (donor counting, receipts)")
    args = parser.parse_args()
    roots = {"A": args.a.resolve(), "B": args.b.resolve()}
    redis = RedisServer()
    try:
        setups = {}
        for side, root in roots.items():
            database = BenchDatabase(name=f"jauge_bench_cpu_{side.lower()}_{os.getpid()}").__enter__()
            env = bench_env(database.url, redis.url, CACHE_KEY_PREFIX=f"jauge-cpu-{side}-{os.getpid()}")
            result = subprocess.run([_python(root), "manage.py", "migrate", "--noinput", "-v0"], cwd=root,
                                    env=env, capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-3000:])
            _run(root, env, CAMPAIGN)
            setups[side] = (database, env)
        results: dict[str, list[dict]] = {"A": [], "B": []}
        per_round = args.warmup + args.events
        for round_number in range(args.rounds):
            for side in ("A", "B") if round_number % 2 == 0 else ("B", "A"):
                database, env = setups[side]
                code = (f"START = {round_number * per_round}\nWARMUP = {args.warmup}\nEVENTS = {args.events}\n"
                        f"EMAIL = {args.email}\n" + ROUND)
                measured = json.loads(_run(roots[side], env, code).strip().splitlines()[-1])
                results[side].append(measured)
                print(f"round {round_number + 1} {side} ({roots[side].name}): {measured['cpu_ms']:.2f} ms CPU/event, "
                      f"{measured['wall_ms']:.2f} ms wall, {measured['queries']:.1f} statements/event, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
        ratios = [b["cpu_ms"] / a["cpu_ms"] for a, b in zip(results["A"], results["B"], strict=True)]
        print(json.dumps({
            "a": str(roots["A"]), "b": str(roots["B"]), "events_per_round": args.events, "email": args.email,
            "a_cpu_ms_median": round(statistics.median(r["cpu_ms"] for r in results["A"]), 2),
            "b_cpu_ms_median": round(statistics.median(r["cpu_ms"] for r in results["B"]), 2),
            "b_over_a_cpu_per_round": [round(r, 3) for r in ratios],
            "b_over_a_cpu_median": round(statistics.median(ratios), 3),
            "a_statements": results["A"][-1]["queries"], "b_statements": results["B"][-1]["queries"],
        }, indent=1))
    finally:
        for database, _env in locals().get("setups", {}).values():
            database.drop()
        redis.stop()


if __name__ == "__main__":
    main()
