"""The banner's hot path against the framework floor, all in one run.

    .venv/bin/python bench/banner.py [--seconds 10] [--rounds 3] [--connections 16] [--big 1000000] [--granian]
                                     [--write bench/RESULTS-banner.md]

A throw-away PostgreSQL database and a private redis-server (the shared cache), gunicorn with
2 sync workers, wrk on loopback (wrk shares the 2 cores: every figure pays for it equally).
Measured, in req/s:
  (a) a constant-string Django view through the same middleware (the floor),
  (b) the banner fragment /embed/<slug>/, for a campaign with 10 donations and one with 1,000,000,
  (c) the banner answered 304 (If-None-Match),
  (d) /api/campaigns/<slug>/progress.json,
  (e) the SVG /embed/<slug>.svg.
Targets: (b), (d) ≥ 0.8 × (a); (c) ≥ 0.9 × (a); (b, 1M donations) ≥ 0.9 × (b, 10).
With --granian, the same cases under granian (WSGI, 2 workers) if it is installed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    PYTHON,
    BenchDatabase,
    Gunicorn,
    RedisServer,
    _Process,
    bench_env,
    free_port,
    http_get,
    wait_for_port,
    wrk,
)

POLL_SECONDS = 10


class Granian(_Process):
    """granian (WSGI interface, N workers) on 127.0.0.1:<free port>."""

    def __init__(self, env: dict[str, str], workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [PYTHON, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(workers), "--blocking-threads", "1", "--log-level", "warning", "config.wsgi:application"],
            env,
            "granian",
        )
        wait_for_port(self.port, 60, self.proc, self.log)


def _cases(base: str) -> list[tuple[str, str, dict[str, str]]]:
    _, headers, _ = http_get(f"{base}/embed/small/")
    etag = {name.lower(): value for name, value in headers.items()}["etag"]
    status, _, _ = http_get(f"{base}/embed/small/", headers={"If-None-Match": etag})
    if status != 304:
        raise RuntimeError(f"expected 304 for a matching If-None-Match, got {status}")
    return [
        ("(a) constant view (floor)", f"{base}/bench/constant/", {}),
        ("(b) banner, 10 donations", f"{base}/embed/small/", {}),
        ("(b) banner, 1M donations", f"{base}/embed/big/", {}),
        ("(c) banner, 304", f"{base}/embed/small/", {"If-None-Match": etag}),
        ("(d) progress.json", f"{base}/api/campaigns/small/progress.json", {}),
        ("(e) SVG", f"{base}/embed/small.svg", {}),
    ]


def _cpu_seconds(root: int) -> float:
    """User + system CPU of a process and all its descendants (Linux /proc), in seconds."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        times[pid] = int(fields[11]) + int(fields[12])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def _measure(web, seconds: int, connections: int, rounds: int) -> dict[str, list[dict]]:
    """Every case once per round, rounds interleaved: each case is compared with the floor of its
    own round, so background load on a shared machine (which comes and goes) hits both alike.

    Besides req/s, the server's own CPU time per request is recorded (its process tree, from
    /proc): it moves much less than req/s with whatever else runs on the machine.
    """
    cases = _cases(web.url)
    for _name, url, headers in cases:
        for _ in range(3):  # warm the workers' per-process caches and connections
            status, _, body = http_get(url, headers=headers)
            if status not in (200, 304):
                raise RuntimeError(f"{url} answered {status}: {body[:200]!r}")
        wrk(url, seconds=1, connections=connections, headers=headers)
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in cases}
    for round_number in range(1, rounds + 1):
        for name, url, headers in cases:
            cpu_before = _cpu_seconds(web.proc.pid)
            result = wrk(url, seconds=seconds, connections=connections, headers=headers)
            cpu = _cpu_seconds(web.proc.pid) - cpu_before
            if result["non_2xx_3xx"] or result["socket_errors"]:
                raise RuntimeError(f"{name}: errors under load:\n{result['raw']}")
            result["cpu_us_per_request"] = cpu / max(1, result["requests"]) * 1e6
            runs[name].append(result)
            print(f"  round {round_number}  {name:<28} {result['requests_per_second']:>9,.0f} req/s  "
                  f"mean latency {result['latency_mean_s'] * 1000:6.2f} ms  "
                  f"server CPU {result['cpu_us_per_request']:5.0f} µs/req", flush=True)
    return runs


FLOOR = "(a) constant view (floor)"
TARGETS = {
    "(b) banner, 10 donations": (FLOOR, 0.8),
    "(b) banner, 1M donations": ("(b) banner, 10 donations", 0.9),
    "(c) banner, 304": (FLOOR, 0.9),
    "(d) progress.json": (FLOOR, 0.8),
}


def _ratios(runs: dict[str, list[dict]], name: str, reference: str) -> tuple[float, float]:
    """Median over rounds of (req/s ratio, CPU-cost ratio) of `name` to `reference` in the same round."""
    by_rps = [case["requests_per_second"] / ref["requests_per_second"]
              for case, ref in zip(runs[name], runs[reference], strict=True)]
    by_cpu = [ref["cpu_us_per_request"] / case["cpu_us_per_request"]
              for case, ref in zip(runs[name], runs[reference], strict=True)]
    return statistics.median(by_rps), statistics.median(by_cpu)


def _report(server: str, runs: dict[str, list[dict]]) -> list[str]:
    # Absolute figures from the quietest round (the floor's best); ratios are per-round medians.
    quiet = max(range(len(runs[FLOOR])), key=lambda i: runs[FLOOR][i]["requests_per_second"])
    lines = [
        f"### {server}",
        "",
        f"req/s and CPU from the quietest round ({quiet + 1} of {len(runs[FLOOR])}); ratios: median over "
        "rounds of each case against the floor of its own round.",
        "",
        "| case | req/s | server CPU µs/req | × floor (req/s) | × floor (CPU) | target | met |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, results in runs.items():
        rps, cpu = results[quiet]["requests_per_second"], results[quiet]["cpu_us_per_request"]
        by_rps, by_cpu = _ratios(runs, name, FLOOR)
        target, verdict = "", ""
        if name in TARGETS:
            reference, minimum = TARGETS[name]
            against_rps, against_cpu = _ratios(runs, name, reference)
            label = "floor" if reference == FLOOR else "(b) with 10"
            target = f"≥ {minimum} × {label}: {against_rps:.2f} (req/s), {against_cpu:.2f} (CPU)"
            verdict = "yes" if against_rps >= minimum else ("by CPU only" if against_cpu >= minimum else "NO")
        lines.append(f"| {name} | {rps:,.0f} | {cpu:,.0f} | {by_rps:.2f} | {by_cpu:.2f} | {target} | {verdict} |")
    polls = runs["(c) banner, 304"][quiet]["requests_per_second"]
    readers = polls * POLL_SECONDS
    lines += ["", f"One 2-core origin answers {polls:,.0f} conditional polls/s (c): about **{readers:,.0f} "
                  f"readers** kept live at one poll every {POLL_SECONDS} s, with wrk on the same cores and no "
                  "cache in front (a CDN or Varnish answering the 304s multiplies it)."]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is kept")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--big", type=int, default=1_000_000, help="donations in the big campaign")
    parser.add_argument("--granian", action="store_true", help="also measure under granian if installed")
    parser.add_argument("--write", type=Path, help="write the results as Markdown to this file")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    lines: list[str] = []
    with BenchDatabase() as db, RedisServer() as redis:
        env = bench_env(db.url, redis.url, DJANGO_SETTINGS_MODULE="bench.settings")
        db.migrate(env)
        small = db.create_campaign(env, slug="small", goal_minor=25_000_00)
        db.bulk_donations(campaign_id=small, count=10, env=env, tag="small")
        big = db.create_campaign(env, slug="big", goal_minor=100_000_000_00)
        started = time.monotonic()
        db.bulk_donations(campaign_id=big, count=args.big, env=env, tag="big")
        count = db.scalar("SELECT count(*) FROM campaigns_donation")
        print(f"inserted {args.big:,} donations in {time.monotonic() - started:.0f} s; "
              f"donations in the database: {count:,}", flush=True)

        servers: list[tuple[str, type]] = [("gunicorn, 2 sync workers", Gunicorn)]
        if args.granian:
            if subprocess.run([PYTHON, "-c", "import granian"], capture_output=True).returncode == 0:
                servers.append(("granian (WSGI), 2 workers", Granian))
            else:
                print("granian not installed: skipped (pip install granian)", flush=True)
        for label, server_class in servers:
            print(f"{label}: wrk -t2 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds", flush=True)
            with server_class(env) as web:
                results = _measure(web, args.seconds, args.connections, args.rounds)
            lines += [*_report(label, results), ""]

    header = [
        "# Banner benchmark",
        "",
        f"`.venv/bin/python bench/banner.py --seconds {args.seconds} --rounds {args.rounds} "
        f"--connections {args.connections} "
        f"--big {args.big}{' --granian' if args.granian else ''}` on {platform.node()} "
        f"({platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. PostgreSQL and a private Redis on loopback; "
        "wrk (2 threads) shares the machine with the server, as it would not in production.",
        "",
    ]
    text = "\n".join(header + lines)
    print()
    print(text)
    if args.write:
        args.write.write_text(text + "\n")
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
