"""The banner against the framework floor and behind the shipped cache, all in one run.

    .venv/bin/python bench/banner.py [--seconds 5] [--rounds 3] [--connections 32] [--big 1000000]
                                     [--samples 20] [--write bench/RESULTS-banner.md]

A throw-away PostgreSQL database (`jauge_bench_<pid>`), a private redis-server, servers on loopback,
wrk `-t1 -c32` (it shares the 2 cores with the servers: every figure pays for it alike).

1. Origin. The framework floor is a bare Django app (bench/floor.py: a constant view, Security +
   Common middleware only) under gunicorn with 2 sync workers. Against it, in interleaved rounds
   (median of the per-round ratios): Jauge's banner 200, banner 304, SVG, progress.json and the banner
   of a campaign with 1,000,000 donations (against the one with 10), under gunicorn 2 sync and under
   granian as docker-compose and the Procfile ship it; the bare app under granian is shown too.
2. Cache. Debian's nginx with deploy/nginx/jauge.conf in front of Jauge (as shipped): banner req/s
   against the same nginx serving a static file of the banner's size, the requests that reached
   Jauge (its own access log), and the time from a committed donation to the new total visible
   through the cache (p50, p95).

Both campaigns carry three milestones (one a stretch goal) and a live match, shown on every banner
(`--no-milestones-match`: bare campaigns, as the runs before matching gifts).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    PYTHON,
    ROOT,
    BenchDatabase,
    Granian,
    Nginx,
    RedisServer,
    _Process,
    bench_env,
    django_run,
    free_port,
    http_get,
    nginx_binary,
    process_group_cpu_seconds,
    wait_for_port,
    wrk,
)

SMAXAGE = 5  # the banner's s-maxage (campaigns/views/embed.py: min(5, poll))


class Gunicorn(_Process):
    """gunicorn, 2 sync workers: the reference server."""

    def __init__(self, env: dict[str, str], app: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__([PYTHON, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
                          "--worker-class", "sync", "--log-level", "warning"], env, "gunicorn")
        wait_for_port(self.port, 60, self.proc, self.log)


def _etag(url: str) -> str:
    status, headers, body = http_get(url)
    if status != 200:
        raise RuntimeError(f"{url} answered {status}: {body[:200]!r}")
    etag = {name.lower(): value for name, value in headers.items()}["etag"]
    if http_get(url, headers={"If-None-Match": etag})[0] != 304:
        raise RuntimeError(f"{url}: no 304 for a matching If-None-Match")
    return etag


Case = tuple[str, str, dict[str, str], int]  # name, URL, request headers, the server's process group

# wrk: every request a URL of its own (an ignored `n=` parameter), so no process can replay an answer
# (config/hotpath.py): what the lean path costs when every poll is new to the process.
EVERY_URL_NEW = Path(tempfile.gettempdir()) / f"jauge-bench-every-url-new-{os.getpid()}.lua"
EVERY_URL_NEW_LUA = """
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, wrk.path .. "&n=" .. n)
end
"""


def _run(name: str, url: str, headers: dict[str, str], server: int, args) -> tuple[float, float]:
    """(req/s, the server's CPU µs per request): the second moves much less with the machine's load."""
    cpu_before = process_group_cpu_seconds(server)
    script = EVERY_URL_NEW if "every URL new" in name else None
    result = wrk(url, seconds=args.seconds, connections=args.connections, threads=1, headers=headers, script=script)
    cpu = process_group_cpu_seconds(server) - cpu_before
    if result["non_2xx_3xx"] or result["socket_errors"]:
        raise RuntimeError(f"{name}: errors under load:\n{result['raw']}")
    return result["requests_per_second"], cpu / max(1, result["requests"]) * 1e6


class Runs:
    """req/s and CPU per request of every case, per round."""

    def __init__(self, names: list[str]):
        self.rps: dict[str, list[float]] = {name: [] for name in names}
        self.cpu: dict[str, list[float]] = {name: [] for name in names}

    def ratio(self, name: str, reference: str) -> float:
        """Median over rounds of req/s against the reference's in the same round."""
        return statistics.median(a / b for a, b in zip(self.rps[name], self.rps[reference], strict=True))

    def cpu_ratio(self, name: str, reference: str) -> float:
        """The same by CPU cost: the reference's µs per request over this case's."""
        return statistics.median(b / a for a, b in zip(self.cpu[name], self.cpu[reference], strict=True))

    def median(self, name: str) -> float:
        return statistics.median(self.rps[name])

    def median_cpu(self, name: str) -> float:
        return statistics.median(self.cpu[name])


def _rounds(cases: list[Case], args, label: str) -> Runs:
    """Every case once per round, rounds interleaved, so the machine's drift hits all cases alike."""
    EVERY_URL_NEW.write_text(EVERY_URL_NEW_LUA)
    for _name, url, headers, _server in cases:
        wrk(url, seconds=1, connections=args.connections, threads=1, headers=headers)  # warm every worker
    runs = Runs([name for name, _, _, _ in cases])
    for number in range(1, args.rounds + 1):
        for name, url, headers, server in cases:
            rps, cpu = _run(name, url, headers, server, args)
            runs.rps[name].append(rps)
            runs.cpu[name].append(cpu)
            print(f"  {label} round {number}  {name:<46} {rps:>9,.0f} req/s  {cpu:6.0f} µs CPU/req", flush=True)
    return runs


FLOOR = "floor: bare Django, gunicorn 2 sync"


def origin(env: dict[str, str], args) -> tuple[dict[str, list[float]], list[str]]:
    floor_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.floor"}
    with (Gunicorn(floor_env, "bench.floor:application") as floor_g,
          Granian(floor_env, "bench.floor:application") as floor_r,
          Gunicorn(env, "config.wsgi") as jauge_g,
          Granian(env, "config.wsgi:application") as jauge_r):
        cases = [(FLOOR, f"{floor_g.url}/bench/constant/", {}, floor_g.proc.pid),
                 ("floor: bare Django, granian as shipped", f"{floor_r.url}/bench/constant/", {}, floor_r.proc.pid)]
        for server, web in (("gunicorn 2 sync", jauge_g), ("granian as shipped", jauge_r)):
            etag = _etag(f"{web.url}/embed/small/")
            _etag(f"{web.url}/embed/big/")
            pid = web.proc.pid
            cases += [
                (f"banner 200, {server}", f"{web.url}/embed/small/", {}, pid),
                (f"banner 304, {server}", f"{web.url}/embed/small/", {"If-None-Match": etag}, pid),
                (f"SVG, {server}", f"{web.url}/embed/small.svg", {}, pid),
                (f"progress.json, {server}", f"{web.url}/api/campaigns/small/progress.json", {}, pid),
                (f"banner 200, every URL new, {server}", f"{web.url}/embed/small/?variant=banner", {}, pid),
                (f"banner 200 (1M donations), every URL new, {server}", f"{web.url}/embed/big/?variant=banner", {},
                 pid),
            ]
        runs = _rounds(cases, args, "origin")
    lines = [
        "### Origin: Jauge against the framework floor",
        "",
        f"Medians of {args.rounds} interleaved rounds. × floor: median of the per-round ratios to the bare Django "
        "app under gunicorn 2 sync (the reference for both servers), by req/s and by the server's CPU per "
        "request (its process group, from /proc; it moves much less than req/s with the machine's load).",
        "",
        "| case | req/s | CPU µs/req | × floor (req/s) | × floor (CPU) | target | met |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    targets = {
        "banner 200, gunicorn 2 sync": 0.9, "banner 304, gunicorn 2 sync": 1.0,
        "progress.json, gunicorn 2 sync": 0.9,
        "banner 200, granian as shipped": 0.9, "banner 304, granian as shipped": 3.0,
        "progress.json, granian as shipped": 0.9,
    }
    for name in runs.rps:
        reference, target = FLOOR, targets.get(name)
        if "1M" in name:
            reference, target = name.replace(" (1M donations)", ""), 0.95
        by_rps, by_cpu = runs.ratio(name, FLOOR), runs.cpu_ratio(name, FLOOR)
        goal = verdict = ""
        if target is not None:
            against_rps, against_cpu = runs.ratio(name, reference), runs.cpu_ratio(name, reference)
            label = "floor" if reference == FLOOR else "10 donations"
            goal = f"≥ {target} × {label}: **{against_rps:.2f}** (req/s), {against_cpu:.2f} (CPU)"
            verdict = "yes" if against_rps >= target else ("by CPU only" if against_cpu >= target else "NO")
        lines.append(f"| {name} | {runs.median(name):,.0f} | {runs.median_cpu(name):,.0f} | {by_rps:.2f} | "
                     f"{by_cpu:.2f} | {goal} | {verdict} |")
    return runs, lines


class Donor:
    """A long-lived Django process that commits one donation per line read (no start-up per sample)."""

    CODE = """
import sys, time
from campaigns.models import Campaign, CampaignTotal
from campaigns.services import ledger
campaign = Campaign.objects.get(slug="small")
for line in sys.stdin:
    n = int(line)
    ledger.donation_record(campaign=campaign, source="manual", external_id=f"fresh-{n}", amount_minor=100,
                           donor_email=f"fresh-{n}@example.org")
    committed = time.time()  # after the commit and its on_commit refresh of the snapshot
    # The new total, read back: a matched gift adds the sponsor's money too.
    print(committed, CampaignTotal.objects.get(campaign=campaign).total_minor, flush=True)
"""

    def __init__(self, env: dict[str, str]):
        prelude = "import django, os\nos.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'\ndjango.setup()\n"
        self.proc = subprocess.Popen([PYTHON, "-c", prelude + self.CODE], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def give(self, n: int) -> tuple[float, int]:
        """(when it was committed, the campaign's new total)."""
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        committed, total = self.proc.stdout.readline().split()
        return float(committed), int(total)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def _freshness(cache_url: str, env: dict[str, str], samples: int) -> list[float]:
    """Seconds from a committed donation to its total in progress.json through the cache.

    A reader polls every 50 ms (a thread, like the many readers that keep the cache warm); donations
    land at random moments of the cache's expiry cycle."""
    url = f"{cache_url}/api/campaigns/small/progress.json"
    seen: dict[int, float] = {}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            status, _, body = http_get(url)
            if status == 200:
                seen.setdefault(json.loads(body)["total_minor"], time.time())
            time.sleep(0.05)

    donor = Donor(env)
    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    delays = []
    try:
        time.sleep(1)
        for n in range(samples):
            time.sleep(random.uniform(0, SMAXAGE))
            committed, total = donor.give(n)
            deadline = time.monotonic() + 60
            while total not in seen and time.monotonic() < deadline:
                time.sleep(0.01)
            if total not in seen:
                raise RuntimeError(f"total {total} not visible through the cache after 60 s")
            delays.append(seen[total] - committed)
    finally:
        stop.set()
        reader.join(5)
        donor.close()
    return delays


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def cache(env: dict[str, str], args) -> list[str]:
    # Jauge as shipped, with its access log (the log of the process) to count what reaches it.
    with Granian(env, extra=("--access-log",)) as web:
        access = web.log
        body = http_get(f"{web.url}/embed/small/")[2]
        if args.milestones_match and not all(part in body.decode() for part in ("Prochain palier", "Chaque don")):
            raise RuntimeError("the banner does not show its next milestone and its match")
        with Nginx(f"127.0.0.1:{web.port}", static_body=body) as nginx:
            banner = f"{nginx.url}/embed/small/"
            for _ in range(2):
                http_get(banner)
            status, headers, _ = http_get(banner)
            cache_status = {name.lower(): value for name, value in headers.items()}.get("x-cache-status")
            if cache_status != "HIT":
                raise RuntimeError(f"nginx did not cache the banner (X-Cache-Status {cache_status!r})")
            cases = [("nginx, static file", nginx.static_url, {}, nginx.proc.pid),
                     ("nginx cache, banner", banner, {}, nginx.proc.pid)]
            before = _origin_requests(access, "/embed/small/")
            started = time.monotonic()
            runs = _rounds(cases, args, "cache")
            elapsed = time.monotonic() - started
            reached = _origin_requests(access, "/embed/small/") - before
            banner_seconds = args.rounds * args.seconds + 1  # + the warm-up
            delays = _freshness(nginx.url, env, args.samples)
    ratio = runs.ratio("nginx cache, banner", "nginx, static file")
    cpu_ratio = runs.cpu_ratio("nginx cache, banner", "nginx, static file")
    allowed = math.ceil(elapsed / SMAXAGE) + 1
    p50, p95 = _percentile(delays, 50), _percentile(delays, 95)
    return [
        "### Behind the shipped cache (deploy/nginx/jauge.conf, Debian's nginx)",
        "",
        "Jauge behind it: granian as shipped, with its access log on (to count what reaches it).",
        "",
        "| figure | value | target | met |",
        "| --- | ---: | --- | --- |",
        f"| nginx serving a static file of the banner's size | {runs.median('nginx, static file'):,.0f} req/s, "
        f"{runs.median_cpu('nginx, static file'):,.0f} µs CPU/req | | |",
        f"| banner through the cache | {runs.median('nginx cache, banner'):,.0f} req/s, "
        f"{runs.median_cpu('nginx cache, banner'):,.0f} µs CPU/req | | |",
        f"| banner through the cache × static | **{ratio:.2f}** (req/s), {cpu_ratio:.2f} (CPU) | ≥ 0.8 | "
        f"{'yes' if ratio >= 0.8 else ('by CPU only' if cpu_ratio >= 0.8 else 'NO')} |",
        f"| banner requests that reached Jauge (its access log) in {elapsed:.0f} s of rounds "
        f"({banner_seconds} s of load on the banner URL) | **{reached}** | ≤ 1 per {SMAXAGE} s s-maxage: ≤ {allowed} "
        f"| {'yes' if reached <= allowed else 'NO'} |",
        f"| committed donation → new total through the cache, p50 / p95 of {len(delays)} | "
        f"{p50:.1f} s / **{p95:.1f} s** | p95 ≤ 10 s | {'yes' if p95 <= 10 else 'NO'} |",
    ]


def _origin_requests(access_log: Path, path: str) -> int:
    if not access_log.exists():
        return 0
    return sum(f"GET {path}" in line for line in access_log.read_text().splitlines())


def _milestones_and_match(env: dict[str, str], campaign_id: int) -> None:
    """Three milestones (one a stretch goal) and a sponsor's match live now, through the services:
    the snapshot then carries what the banner, the SVG and progress.json show of them."""
    django_run(env, f"""
from datetime import timedelta
from django.utils import timezone
from campaigns.models import Campaign, Milestone
from campaigns.services.campaigns import campaign_save, milestones_save
campaign = Campaign.objects.get(pk={campaign_id})
now = timezone.now()
campaign.match_sponsor, campaign.match_ratio, campaign.match_cap_minor = "Fondation Lumière", 1, 500_000
campaign.match_starts_at, campaign.match_ends_at = now - timedelta(days=1), now + timedelta(days=20)
campaign_save(campaign=campaign)
base = min(campaign.goal_minor, 500_000_000)  # milestones are at most MAX_AMOUNT_MINOR
milestones_save(campaign_id=campaign.pk, deleted=[], changed=[
    Milestone(amount_minor=amount, label=label)
    for amount, label in ((base // 2, "La moitié"), (base, "L'objectif"), (base * 3 // 2, "Un numéro spécial"))])
""")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are kept")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--big", type=int, default=1_000_000, help="donations in the big campaign")
    parser.add_argument("--samples", type=int, default=20, help="donations timed through the cache")
    parser.add_argument("--write", type=Path, help="write the results as Markdown to this file")
    parser.add_argument("--milestones-match", action=argparse.BooleanOptionalAction, default=True,
                        help="give both campaigns three milestones and a live match (shown on every banner)")
    args = parser.parse_args()
    missing = [tool for tool, found in (("wrk", shutil.which("wrk")), ("nginx", nginx_binary())) if not found]
    if subprocess.run([PYTHON, "-c", "import granian"], capture_output=True).returncode != 0:
        missing.append("granian (make install)")
    if missing:
        print(f"missing: {', '.join(missing)} (apt-get install wrk nginx-light)", file=sys.stderr)
        return 2

    with BenchDatabase() as db, RedisServer() as redis:
        env = bench_env(db.url, redis.url)
        db.migrate(env)
        small = db.create_campaign(env, slug="small", goal_minor=25_000_00)
        db.bulk_donations(campaign_id=small, count=10, env=env, tag="small")
        big = db.create_campaign(env, slug="big", goal_minor=100_000_000_00)
        started = time.monotonic()
        db.bulk_donations(campaign_id=big, count=args.big, env=env, tag="big")
        if args.milestones_match:
            for campaign_id in (small, big):
                _milestones_and_match(env, campaign_id)
        count = db.scalar("SELECT count(*) FROM campaigns_donation")
        print(f"inserted {args.big:,} donations in {time.monotonic() - started:.0f} s; in the database: {count:,}",
              flush=True)
        _runs, origin_lines = origin(env, args)
        cache_lines = cache(env, args)

    command = (f"`.venv/bin/python bench/banner.py --seconds {args.seconds} --rounds {args.rounds} "
               f"--connections {args.connections} --big {args.big} --samples {args.samples}"
               f"{'' if args.milestones_match else ' --no-milestones-match'}`")
    text = "\n".join([
        "# Banner benchmark",
        "",
        f"{command} on {platform.node()} ({platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, "
        f"Python {platform.python_version()}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"wrk -t1 -c{args.connections} on loopback, sharing the cores with the servers.",
        "",
        *origin_lines,
        "",
        *cache_lines,
        "",
    ])
    print()
    print(text)
    if args.write:
        previous = args.write.read_text() if args.write.exists() else ""
        notes = previous[previous.index("## Reading these figures"):] if "## Reading these figures" in previous else ""
        args.write.write_text(text + ("\n" + notes if notes else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
