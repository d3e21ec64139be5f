"""The bad-day drill: a webhook storm while workers are killed and Redis and PostgreSQL restart.

    .venv/bin/python bench/chaos.py                 # 5 minutes, 150 donations/s, 30 % re-deliveries
    .venv/bin/python bench/chaos.py --seconds 60    # a shorter rehearsal (chaos times scale with it)

Everything is its own: a PostgreSQL cluster (initdb into a temporary folder, a free port — never
the shared server; needs root for `runuser -u postgres`), a redis-server (free port, no
persistence), 2 web replicas (gunicorn, compose's gthread worker class), 2 Celery workers
(compose's command: prefork, concurrency 4, gossip and mingle on) and beat, on loopback.

The load is open-loop: signed `donation.succeeded` deliveries are sent on a fixed schedule, 30 %
of them re-deliveries of an event already sent, alternating between the two web replicas. The
"provider" retries what was not acknowledged (503 after Retry-After, connection errors, other
5xx), as real providers do. Meanwhile one worker is SIGKILLed (its whole process group) every
30 s and started again a second later (compose's restart policy), Redis is killed and started
again once (at 1/3 of the run) and PostgreSQL is stopped for 5 s once (at 2/3).

Printed: answers by code, p50/p99 answer time, donations/s applied, the longest time an event
waited, and the final checks — total = Σ ledger = the sum of every unique donation that got a
2xx, no event left `received`, `reconcile` clean, and no worker exited on its own (the broker
restart must not take one down).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import http.client
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    BENCH_SECRET,
    PYTHON,
    Gunicorn,
    PostgresServer,
    RedisServer,
    _Process,
    bench_env,
    django_run,
    manage,
)
from campaigns.signing import SIGNATURE_HEADER, sign  # noqa: E402

SLUG = "chaos"


class Worker(_Process):
    """`celery -A config worker --loglevel … --concurrency 4` as docker-compose runs it."""

    def __init__(self, env: dict[str, str], name: str, concurrency: int):
        self.name = name
        super().__init__([PYTHON, "-m", "celery", "-A", "config", "worker", "--loglevel", "warning",
                          "--concurrency", str(concurrency), "-n", f"{name}@%h"], env, name)


class Beat(_Process):
    def __init__(self, env: dict[str, str], schedule: Path):
        super().__init__([PYTHON, "-m", "celery", "-A", "config", "beat", "--loglevel", "warning",
                          "--schedule", str(schedule)], env, "beat")


class Storm:
    """The provider side: paced deliveries, retries of what was not acknowledged, answer times."""

    def __init__(self, urls: list[str], rate: float, duplicate_share: float, seconds: float, senders: int):
        self.urls, self.rate, self.duplicate_share, self.seconds = urls, rate, duplicate_share, seconds
        self.rng = random.Random(14)
        self.lock = threading.Lock()
        self.codes: Counter = Counter()
        self.times: list[float] = []
        self.acknowledged: dict[str, int] = {}  # donation id -> amount, once any delivery got a 2xx
        self.amounts: dict[str, int] = {}
        self.sent_ids: list[str] = []
        self.retries: list[tuple[float, int, str]] = []  # heap of (due, seq, event id)
        self.queue: deque[str] = deque()
        self.cond = threading.Condition()
        self.senders = senders
        self.done_scheduling = False
        self.given_up: Counter = Counter()
        self._seq = 0
        self.first_send = self.last_answer = 0.0

    def _body(self, event_id: str) -> bytes:
        donation = event_id.replace("evt_", "don_")
        return json.dumps({
            "id": event_id, "type": "donation.succeeded",
            "data": {"donation_id": donation, "campaign": SLUG, "amount_minor": self.amounts[donation],
                     "currency": "EUR", "donor": {"name": "Orage", "email": "", "anonymous": False},
                     "occurred_at": "2026-11-30T10:00:00Z"},
        }).encode()

    def _push(self, event_id: str) -> None:
        with self.cond:
            self.queue.append(event_id)
            self.cond.notify()

    def schedule(self, started: float) -> None:
        """Unique donations at `rate`/s; a share of the deliveries are re-deliveries."""
        unique = 0
        deliveries = 0
        per_delivery = (1 - self.duplicate_share) / self.rate  # seconds between deliveries
        while True:
            now = time.monotonic()
            if now - started >= self.seconds:
                break
            due = started + deliveries * per_delivery
            if due > now:
                time.sleep(min(due - now, 0.05))
                self._release_retries()
                continue
            if self.sent_ids and self.rng.random() < self.duplicate_share:
                event_id = self.rng.choice(self.sent_ids[-2000:])
            else:
                donation = f"don_{unique}"
                self.amounts[donation] = self.rng.randint(100, 10_000)
                event_id = f"evt_{unique}"
                self.sent_ids.append(event_id)
                unique += 1
            deliveries += 1
            self._push(event_id)
            self._release_retries()
        # After the storm: keep retrying what was refused until it is acknowledged (or 5 tries).
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            self._release_retries()
            with self.lock:
                pending = bool(self.retries)
            with self.cond:
                busy = bool(self.queue)
            if not pending and not busy:
                break
            time.sleep(0.1)
        with self.cond:
            self.done_scheduling = True
            self.cond.notify_all()

    def _release_retries(self) -> None:
        now = time.monotonic()
        while True:
            with self.lock:
                if not self.retries or self.retries[0][0] > now:
                    return
                _, _, event_id = heapq.heappop(self.retries)
            self._push(event_id)

    def _retry_later(self, event_id: str, delay: float, attempts: Counter) -> None:
        attempts[event_id] += 1
        if attempts[event_id] > 8:
            self.given_up[event_id] += 1
            return
        with self.lock:
            self._seq += 1
            heapq.heappush(self.retries, (time.monotonic() + delay, self._seq, event_id))

    def send_loop(self, index: int, attempts: Counter) -> None:
        url = self.urls[index % len(self.urls)]
        host, port = url.rsplit(":", 1)[0].split("//")[1], int(url.rsplit(":", 1)[1])
        conn = None
        while True:
            with self.cond:
                while not self.queue and not self.done_scheduling:
                    self.cond.wait(0.5)
                if not self.queue and self.done_scheduling:
                    break
                event_id = self.queue.popleft()
            body = self._body(event_id)
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, BENCH_SECRET)}
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=15)
                conn.request("POST", "/hooks/generic/", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                retry_after = float(response.headers.get("Retry-After") or 5)
                if response.headers.get("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                status, retry_after = f"error {exc.__class__.__name__}", 2.0
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            took = time.monotonic() - started
            with self.lock:
                self.last_answer = time.monotonic()
                self.codes[status] += 1
                self.times.append(took)
                if status in (200, 202):
                    donation = event_id.replace("evt_", "don_")
                    self.acknowledged[donation] = self.amounts[donation]
            if status not in (200, 202):
                if isinstance(status, int) and 400 <= status < 500:
                    continue  # the provider gives up on a refusal (none expected here)
                self._retry_later(event_id, retry_after, attempts)

    def run(self) -> None:
        started = self.first_send = time.monotonic()
        attempts: Counter = Counter()
        threads = [threading.Thread(target=self.send_loop, args=(i, attempts), daemon=True)
                   for i in range(self.senders)]
        for thread in threads:
            thread.start()
        self.schedule(started)
        for thread in threads:
            thread.join(60)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="length of the storm")
    parser.add_argument("--rate", type=float, default=150, help="unique donations per second offered")
    parser.add_argument("--duplicates", type=float, default=0.3, help="share of deliveries that are re-deliveries")
    parser.add_argument("--kill-every", type=float, default=30, help="SIGKILL a worker this often (s)")
    parser.add_argument("--senders", type=int, default=24, help="sending threads")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn processes per web replica")
    parser.add_argument("--concurrency", type=int, default=4, help="processes per Celery worker (compose: 4)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/chaos.py needs root: its own PostgreSQL runs as `postgres` (runuser)")
        return 2

    log = []

    def say(message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        log.append(line)
        print(line, flush=True)

    pg = PostgresServer()
    redis = RedisServer()
    webs: list[Gunicorn] = []
    workers: list[Worker] = []
    beat = None
    try:
        db_url = pg.create_database("jauge")
        env = bench_env(db_url, redis.url, SWEEP_AFTER_SECONDS="60", DB_CONNECT_TIMEOUT="2",
                        METRICS_TOKEN="chaos-metrics-token-0123")
        manage(env, "migrate", "--noinput", "-v0")
        django_run(env, f"""
from datetime import timedelta
from django.utils import timezone
from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_upsert
now = timezone.now()
campaign_upsert(slug={SLUG!r}, defaults=dict(title="Orage", goal_minor=10**10, currency="EUR",
    status=Campaign.Status.ACTIVE, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=29)))
""")
        compose_web = ("--worker-class", "gthread", "--threads", "8")
        webs = [Gunicorn(env, workers=args.web_workers, extra=compose_web) for _ in range(2)]
        workers = [Worker(env, f"w{i + 1}", args.concurrency) for i in range(2)]
        beat = Beat(env, Path(tempfile.mkdtemp(prefix="jauge-chaos-beat-")) / "schedule")
        time.sleep(5)
        say(f"stack up: PostgreSQL :{pg.port}, Redis :{redis.port}, web {[w.port for w in webs]}, "
            f"workers {[w.proc.pid for w in workers]}, beat {beat.proc.pid}; load average {os.getloadavg()[0]:.1f}")

        storm = Storm([w.url for w in webs], args.rate, args.duplicates, args.seconds, args.senders)
        storm_thread = threading.Thread(target=storm.run, daemon=True)
        storm_started = time.monotonic()
        storm_thread.start()

        kills = unplanned = 0
        redis_at, pg_at = args.seconds / 3, args.seconds * 2 / 3
        redis_done = pg_done = False
        next_kill = args.kill_every
        while storm_thread.is_alive() and time.monotonic() - storm_started < args.seconds:
            elapsed = time.monotonic() - storm_started
            for i, worker in enumerate(workers):
                if worker.proc.poll() is not None:  # exited without being killed by us
                    unplanned += 1
                    say(f"worker {worker.name} exited on its own (code {worker.proc.returncode}): restarting it")
                    workers[i] = Worker(env, worker.name, args.concurrency)
            if elapsed >= next_kill:
                victim = workers[kills % 2]
                os.killpg(victim.proc.pid, signal.SIGKILL)
                victim.proc.wait(10)
                kills += 1
                say(f"t={elapsed:5.1f}s SIGKILL worker {victim.name} (pid {victim.proc.pid})")
                time.sleep(1)
                workers[workers.index(victim)] = Worker(env, victim.name, args.concurrency)
                next_kill += args.kill_every
            if not redis_done and elapsed >= redis_at:
                say(f"t={elapsed:5.1f}s Redis killed")
                redis.kill()
                time.sleep(2)
                redis = RedisServer(port=redis.port)
                say(f"t={time.monotonic() - storm_started:5.1f}s Redis started again (empty)")
                redis_done = True
            if not pg_done and elapsed >= pg_at:
                say(f"t={elapsed:5.1f}s PostgreSQL stopped")
                pg.stop("fast")
                time.sleep(5)
                pg.start()
                say(f"t={time.monotonic() - storm_started:5.1f}s PostgreSQL started again")
                pg_done = True
            time.sleep(0.2)
        storm_seconds = time.monotonic() - storm_started
        say(f"storm over after {storm_seconds:.0f} s; the provider retries what was refused")
        storm_thread.join(240)

        # Drain: every stored event applied (the sweeper re-sends what Redis and the killed
        # workers lost, 60 s after arrival, every 30 s).
        drain_started = time.monotonic()
        received = None
        while time.monotonic() - drain_started < 1800:
            received = pg_scalar(db_url, "SELECT count(*) FROM campaigns_paymentevent WHERE status = 'received'")
            if received == 0:
                break
            time.sleep(2)
        drained = time.monotonic() - drain_started
        all_applied_after = time.monotonic() - storm_started
        say(f"drained in {drained:.0f} s after the storm ({received} event(s) still received)")

        total = pg_scalar(db_url, "SELECT total_minor FROM campaigns_campaigntotal")
        ledger = pg_scalar(db_url, "SELECT coalesce(sum(delta_minor), 0) FROM campaigns_ledgerentry")
        entries = pg_scalar(db_url, "SELECT count(*) FROM campaigns_ledgerentry")
        expected = sum(storm.acknowledged.values())
        longest = pg_scalar(db_url, "SELECT coalesce(extract(epoch FROM max(processed_at - received_at)), 0) "
                                    "FROM campaigns_paymentevent WHERE processed_at IS NOT NULL")
        in_window = pg_scalar(db_url, "SELECT count(*) FROM campaigns_paymentevent WHERE processed_at IS NOT NULL "
                                      "AND processed_at <= (SELECT min(received_at) FROM campaigns_paymentevent) "
                                      "+ make_interval(secs => %s)", storm_seconds)
        timeline = pg_timeline(db_url, bucket=15)
        waits = pg_rows(db_url, "SELECT extract(epoch FROM processed_at - received_at) FROM campaigns_paymentevent "
                                "WHERE processed_at IS NOT NULL")
        try:
            manage(env, "reconcile")
            reconcile_clean = True
        except RuntimeError as exc:
            reconcile_clean = False
            say(f"reconcile: {exc}")
        beat_alive = beat.proc.poll() is None
        unacknowledged = sorted(set(storm.amounts) - set(storm.acknowledged))

        codes = ", ".join(f"{code}: {count}" for code, count in sorted(storm.codes.items(), key=lambda kv: str(kv[0])))
        print()
        print(f"storm: {storm_seconds:.0f} s, {args.rate:.0f} unique donations/s offered, "
              f"{args.duplicates:.0%} re-deliveries; {len(storm.amounts)} unique donations, "
              f"{sum(storm.codes.values())} deliveries (retries included)")
        print(f"chaos: {kills} worker SIGKILLs (every {args.kill_every:.0f} s), Redis restarted at "
              f"t={redis_at:.0f}s, PostgreSQL stopped 5 s at t={pg_at:.0f}s")
        print(f"answers by code: {codes}")
        print(f"answer time: p50 {_percentile(storm.times, 0.5) * 1000:.0f} ms, "
              f"p99 {_percentile(storm.times, 0.99) * 1000:.0f} ms, max {max(storm.times) * 1000:.0f} ms")
        sending = storm.last_answer - storm.first_send
        deliveries = sum(storm.codes.values())
        print(f"deliveries answered: {deliveries} in {sending:.0f} s = {deliveries / sending:.1f}/s "
              f"(offered {args.rate / (1 - args.duplicates):.0f}/s during {args.seconds:.0f} s)")
        print(f"applied: {in_window} events within the first {storm_seconds:.0f} s "
              f"= {in_window / storm_seconds:.1f}/s; all {entries} donations applied "
              f"{all_applied_after:.0f} s after the storm began = {entries / all_applied_after:.1f}/s overall")
        print("timeline (15 s windows from the first event: events stored / events applied / applied per s):")
        for start, stored, applied in timeline:
            print(f"  t={start:4d}s  {stored:6d} stored  {applied:6d} applied  {applied / 15:6.1f}/s")
        print(f"event wait (received → applied): median {statistics.median(waits):.2f} s, "
              f"p99 {_percentile(waits, 0.99):.1f} s, longest {longest:.1f} s")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores, shared)")
        checks = {
            "total = Σ ledger": total == ledger,
            "Σ ledger = Σ unique donations acknowledged (2xx)": ledger == expected,
            "one ledger entry per acknowledged donation": entries == len(storm.acknowledged),
            "no event left `received`": received == 0,
            "reconcile clean": reconcile_clean,
            "no worker exited on its own (broker restart included)": unplanned == 0,
            "beat still running": beat_alive,
        }
        print(f"total {total} | Σ ledger {ledger} | Σ acknowledged {expected} "
              f"({len(storm.acknowledged)} donations; {len(unacknowledged)} never acknowledged: "
              f"{unacknowledged[:5]})")
        for name, ok in checks.items():
            print(f"  {'✔' if ok else '✘'} {name}")
        return 0 if all(checks.values()) else 1
    finally:
        if beat is not None:
            beat.stop()
        for worker in workers:
            worker.stop()
        for web in webs:
            web.stop()
        redis.stop()
        pg.destroy()


def pg_scalar(url: str, query: str, *params):
    import psycopg

    for _ in range(30):
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                return conn.execute(query, params or None).fetchone()[0]
        except psycopg.OperationalError:
            time.sleep(1)
    raise RuntimeError(f"database unavailable for {query!r}")


def pg_timeline(url: str, bucket: int) -> list[tuple[int, int, int]]:
    import psycopg

    query = """
        WITH t0 AS (SELECT min(received_at) AS at FROM campaigns_paymentevent),
        stored AS (SELECT floor(extract(epoch FROM received_at - t0.at) / %(b)s)::int AS w, count(*) AS n
                   FROM campaigns_paymentevent, t0 GROUP BY 1),
        applied AS (SELECT floor(extract(epoch FROM processed_at - t0.at) / %(b)s)::int AS w, count(*) AS n
                    FROM campaigns_paymentevent, t0 WHERE processed_at IS NOT NULL GROUP BY 1)
        SELECT g * %(b)s, coalesce(stored.n, 0), coalesce(applied.n, 0)
        FROM generate_series(0, (SELECT greatest(max(w), 0) FROM applied)) g
        LEFT JOIN stored ON stored.w = g LEFT JOIN applied ON applied.w = g ORDER BY g"""
    with psycopg.connect(url, connect_timeout=3) as conn:
        return [(int(a), int(b), int(c)) for a, b, c in conn.execute(query, {"b": bucket}).fetchall()]


def pg_rows(url: str, query: str) -> list:
    import psycopg

    with psycopg.connect(url, connect_timeout=3) as conn:
        return [float(row[0]) for row in conn.execute(query).fetchall()]


if __name__ == "__main__":
    sys.exit(main())
