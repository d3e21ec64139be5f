"""Benchmark harness: a throw-away PostgreSQL database, a private Redis, gunicorn, a Celery
worker and wrk, all as subprocesses on loopback, bounded in time, cleaned up on exit.

Nothing here touches the shared servers' data: the database is `jauge_bench_<pid>` (created
and dropped here), Redis is our own `redis-server` on a free port (killed here).

    from bench.harness import BenchDatabase, RedisServer, Gunicorn, CeleryWorker, wrk, django_run

    with BenchDatabase() as db, RedisServer() as redis:
        env = bench_env(db.url, redis.url)
        db.migrate(env)
        campaign_id = db.create_campaign(env, slug="bench")
        db.bulk_donations(campaign_id=campaign_id, count=1_000_000, env=env)
        with Gunicorn(env) as web:
            print(wrk(f"{web.url}/api/campaigns/bench/progress.json", seconds=10)["requests_per_second"])
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import yaml
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
PG_ADMIN_URL = os.environ.get("JAUGE_BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BENCH_SECRET = "bench-webhook-secret-7d3f9a1c5e2b8d4f6a0c"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, timeout: float = 30, proc: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            output = log.read_text(errors="replace") if log else ""
            raise RuntimeError(f"process exited early ({proc.returncode}):\n{output[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def bench_env(database_url: str, redis_url: str | None, **overrides: str) -> dict[str, str]:
    """The environment for every subprocess of one bench run (web, worker, django_run)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "CELERY_"))}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY="bench-secret-key-2b6d8f0a4c1e3a5c7e9b1d3f5a7c",
        DONOR_KEY_SECRET="bench-donor-key-5e1a9c3d7b2f6e0a4c8d2b6f0a3e",
        DEBUG="false",
        GENERIC_WEBHOOK_SECRET=BENCH_SECRET,
        CACHE_KEY_PREFIX=f"jauge-bench-{os.getpid()}",
        CELERY_QUEUE=f"jauge-bench-{os.getpid()}",
        JAUGE_VAR_DIR=tempfile.mkdtemp(prefix="jauge-bench-var-"),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url + "/0"
        env["CELERY_BROKER_URL"] = redis_url + "/1"
    else:
        env.pop("REDIS_URL", None)
    env.update(overrides)
    return env


def django_run(env: dict[str, str], code: str, timeout: float = 600) -> str:
    """Run Python `code` in a subprocess with Django set up for `env`; return its stdout."""
    prelude = "import django, os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\ndjango.setup()\n"
    result = subprocess.run(
        [PYTHON, "-c", prelude + code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"django_run failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class BenchDatabase:
    """A dedicated PostgreSQL database, dropped (WITH FORCE) on exit."""

    def __init__(self, name: str | None = None, admin_url: str = PG_ADMIN_URL):
        self.name = name or f"jauge_bench_{os.getpid()}"
        self.admin_url = admin_url
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name

    def __enter__(self) -> BenchDatabase:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        return self

    def __exit__(self, *exc) -> None:
        self.drop()

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    def migrate(self, env: dict[str, str]) -> None:
        manage(env, "migrate", "--noinput", "-v0")

    def create_campaign(self, env: dict[str, str], *, slug: str = "bench", goal_minor: int = 100_000_000) -> int:
        """An active campaign (through the service, so every column gets its default); its id."""
        out = django_run(env, f"""
from datetime import timedelta
from django.utils import timezone
from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_upsert
now = timezone.now()
campaign, _ = campaign_upsert(slug={slug!r}, defaults=dict(
    title="Campagne de mesure", goal_minor={goal_minor}, currency="EUR", status=Campaign.Status.ACTIVE,
    starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=29)))
print(campaign.pk)
""")
        return int(out.strip().splitlines()[-1])

    def bulk_donations(
        self, *, campaign_id: int, count: int, env: dict[str, str], amount_minor: int = 1000, tag: str = "bulk"
    ) -> None:
        """Insert `count` confirmed donations, their ledger entries and the matching counter, fast.

        One template donation goes through the ledger service (so every column, present or added
        later by a migration, gets a valid value); generate_series copies it in SQL. Each copy is
        its own donor. The cached progress snapshot is refreshed at the end.
        """
        if count <= 0:
            return
        out = django_run(env, f"""
from campaigns.models import Campaign
from campaigns.services import ledger
campaign = Campaign.objects.get(pk={campaign_id})
donation, _ = ledger.donation_record(campaign=campaign, source="manual", external_id="template-{tag}",
                                     amount_minor={amount_minor}, donor_email="template-{tag}@example.org")
print(donation.pk, donation.ledger.get().pk)
""")
        template_id, template_entry = (int(x) for x in out.split()[-2:])
        remaining = count - 1
        if remaining <= 0:
            return
        with self.connect() as conn:
            donation_cols = self._columns(conn, "campaigns_donation")
            entry_cols = self._columns(conn, "campaigns_ledgerentry")
            overrides = {
                "external_id": sql.SQL("{} || g::text").format(sql.Literal(f"{tag}-")),
                "donor_key": sql.SQL("{} || g::text").format(sql.Literal(f"d:{tag}-")),
                "donor_email": sql.Literal(""),
                "reference": sql.NULL,
            }
            select = sql.SQL(", ").join(overrides.get(c, sql.SQL("t.") + sql.Identifier(c)) for c in donation_cols)
            max_before = conn.execute("SELECT coalesce(max(id), 0) FROM campaigns_donation").fetchone()[0]
            conn.execute(
                sql.SQL(
                    "INSERT INTO campaigns_donation ({cols}) SELECT {select} "
                    "FROM campaigns_donation t, generate_series(1, %s) g WHERE t.id = %s"
                ).format(cols=sql.SQL(", ").join(map(sql.Identifier, donation_cols)), select=select),
                (remaining, template_id),
            )
            entry_overrides = {"donation_id": sql.SQL("d.id"), "delta_minor": sql.SQL("d.amount_minor")}
            entry_select = sql.SQL(", ").join(
                entry_overrides.get(c, sql.SQL("t.") + sql.Identifier(c)) for c in entry_cols
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO campaigns_ledgerentry ({cols}) SELECT {select} "
                    "FROM campaigns_ledgerentry t, campaigns_donation d "
                    "WHERE t.id = %s AND d.id > %s AND d.campaign_id = %s"
                ).format(cols=sql.SQL(", ").join(map(sql.Identifier, entry_cols)), select=entry_select),
                (template_entry, max_before, campaign_id),
            )
            conn.execute(
                "UPDATE campaigns_campaigntotal SET total_minor = total_minor + %s, "
                "donation_count = donation_count + %s, donor_count = donor_count + %s, "
                "version = version + 1, updated_at = now() WHERE campaign_id = %s",
                (remaining * amount_minor, remaining, remaining, campaign_id),
            )
            conn.execute("ANALYZE campaigns_donation; ANALYZE campaigns_ledgerentry")
        self.progress_refresh(env, campaign_id=campaign_id)

    @staticmethod
    def _columns(conn: psycopg.Connection, table: str) -> list[str]:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND column_name <> 'id' "
            "ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [row[0] for row in rows]

    def progress_refresh(self, env: dict[str, str], *, campaign_id: int) -> None:
        django_run(env, "from campaigns.services.progress import progress_publish; "
                        f"progress_publish(campaign_id={campaign_id})")

    def totals(self, campaign_id: int) -> dict[str, int]:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT total_minor, donation_count, donor_count, version FROM campaigns_campaigntotal "
                "WHERE campaign_id = %s",
                (campaign_id,),
            ).fetchone()
        return dict(zip(("total_minor", "donation_count", "donor_count", "version"), row, strict=True))

    def rows(self, query: str, *params) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(query, params).fetchall()

    def scalar(self, query: str, *params) -> object:
        with self.connect() as conn:
            return conn.execute(query, params).fetchone()[0]


class _Process:
    """A subprocess in its own process group, logging to a temp file, killed as a group."""

    def __init__(self, args: list[str], env: dict[str, str], name: str):
        self.log = Path(tempfile.mkstemp(prefix=f"jauge-bench-{name}-", suffix=".log")[1])
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log_file.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class RedisServer(_Process):
    """A private redis-server (no persistence) on a free port: ours to flush or kill."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        super().__init__(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            os.environ.copy(),
            "redis",
        )
        wait_for_port(self.port, 10, self.proc, self.log)


class Gunicorn(_Process):
    """gunicorn (2 sync workers by default) on 127.0.0.1:<free port>."""

    def __init__(self, env: dict[str, str], workers: int = 2, port: int | None = None, extra: tuple[str, ...] = ()):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [PYTHON, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
             "--worker-class", "sync", "--log-level", "warning", *extra],
            env,
            "gunicorn",
        )
        wait_for_port(self.port, 60, self.proc, self.log)


class CeleryWorker(_Process):
    """A Celery worker on the env's queue; `ready()` waits until it consumes."""

    def __init__(self, env: dict[str, str], concurrency: int = 2, pool: str = "prefork", extra: tuple[str, ...] = ()):
        super().__init__(
            [PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", env.get("CELERY_QUEUE", "jauge"),
             "--concurrency", str(concurrency), "--pool", pool, "--loglevel", "info",
             "--without-mingle", "--without-gossip", "--hostname", f"bench-{os.getpid()}-{time.monotonic_ns()}@%h",
             *extra],
            env,
            "worker",
        )
        self.ready()

    def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.output():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.output()[-4000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready after {timeout}s:\n{self.output()[-4000:]}")


def http_get(url: str, timeout: float = 10, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def http_json(url: str, timeout: float = 10) -> dict:
    status, _, body = http_get(url, timeout)
    if status != 200:
        raise RuntimeError(f"GET {url} answered {status}: {body[:200]!r}")
    return json.loads(body)


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def wrk(
    url: str,
    *,
    seconds: int = 10,
    connections: int = 16,
    threads: int = 2,
    headers: dict[str, str] | None = None,
    timeout_s: int = 5,
    script: Path | None = None,
) -> dict[str, float]:
    """Run Debian's wrk for a bounded duration; return req/s, mean latency (s), requests, errors."""
    args = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", f"{timeout_s}s"]
    if script is not None:
        args += ["-s", str(script)]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    result = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    out = result.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    latency = re.search(r"Latency\s+(\S+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests_per_second": float(rps.group(1)) if rps else 0.0,
        "latency_mean_s": _seconds(latency.group(1)) if latency else float("nan"),
        "requests": int(total.group(1)) if total else 0,
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0,
        "raw": out,
    }


def process_group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group, and by
    the children they have reaped: a load-independent cost, unlike wall-clock rates on a busy box."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state ppid pgrp ... utime(12) stime(13) cutime(14) cstime(15).
        if int(fields[2]) == pgid:
            total += sum(int(value) for value in fields[11:15])
    return total / ticks


def pids_cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:13])
    return total / ticks


def wait_until(predicate, timeout: float = 120, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {message}")


NGINX_CONFIG = ROOT / "deploy" / "nginx" / "jauge.conf"


def nginx_config(*, upstream: str, port: int, workdir: Path, static_port: int | None = None) -> str:
    """A runnable nginx.conf around the shipped deploy/nginx/jauge.conf, as the nginx image wraps it
    (its http {} includes conf.d/*.conf), with the upstream, port and cache folder of this machine.

    With `static_port`, the same nginx also serves `workdir/static/` there: the ceiling to compare with.
    """
    shipped = NGINX_CONFIG.read_text()
    for old, new in (("server web:8000;", f"server {upstream};"), ("listen 80;", f"listen 127.0.0.1:{port};"),
                     ("/var/cache/nginx/jauge", str(workdir / "cache"))):
        if shipped.count(old) != 1:
            raise RuntimeError(f"{NGINX_CONFIG} no longer has exactly one {old!r}: update bench/harness.py")
        shipped = shipped.replace(old, new)
    static = ""
    if static_port is not None:
        static = f"server {{ listen 127.0.0.1:{static_port}; root {workdir / 'static'}; }}"
    # As root, nginx's workers would otherwise switch to `nobody`, who cannot write our temp folders.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""{user}
worker_processes auto;
pid {workdir / 'nginx.pid'};
error_log {workdir / 'error.log'} warn;
events {{ worker_connections 4096; }}
http {{
    # As the nginx image's own nginx.conf (minus its access log, off for both sides of the ratio).
    sendfile on;
    keepalive_timeout 65;
    access_log off;
    types {{ text/html html; text/plain txt; application/json json; image/svg+xml svg; }}
    default_type application/octet-stream;
    client_body_temp_path {workdir / 'body'};
    proxy_temp_path {workdir / 'proxy'};
{shipped}
{static}
}}
"""


def nginx_binary() -> str | None:
    for candidate in ("/usr/sbin/nginx", shutil.which("nginx")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class Nginx(_Process):
    """Debian's nginx in the foreground with the shipped cache config, in front of `upstream`."""

    def __init__(self, upstream: str, *, static_body: bytes | None = None):
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
        self.workdir = Path(tempfile.mkdtemp(prefix="jauge-nginx-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.static_url = None
        static_port = None
        if static_body is not None:
            static_port = free_port()
            (self.workdir / "static").mkdir()
            (self.workdir / "static" / "banner.html").write_bytes(static_body)
            self.static_url = f"http://127.0.0.1:{static_port}/banner.html"
        self.conf = self.workdir / "nginx.conf"
        self.conf.write_text(nginx_config(upstream=upstream, port=self.port, workdir=self.workdir,
                                          static_port=static_port))
        super().__init__([binary, "-e", str(self.workdir / "error.log"), "-c", str(self.conf),
                          "-g", "daemon off;"], os.environ.copy(), "nginx")
        wait_for_port(self.port, 20, self.proc, self.log)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        super().stop(sig, timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)


def shipped_web_args(*, host: str, port: int, app: str = "config.wsgi:application") -> list[str]:
    """docker-compose.yml's `web` command (granian and its options), bound to host:port, serving `app`."""
    command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["command"]
    args = shlex.split(command) if isinstance(command, str) else list(command)
    if args[0] != "granian" or args[-1] != "config.wsgi:application":
        raise RuntimeError(f"docker-compose.yml's web command changed shape: {command!r}")
    args = args[:-1]
    for option, value in (("--host", host), ("--port", str(port))):
        args[args.index(option) + 1] = value
    return [*args, app]


class Granian(_Process):
    """granian with the options docker-compose.yml gives `web` (read from it), on a free port."""

    def __init__(self, env: dict[str, str], app: str = "config.wsgi:application", extra: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = shipped_web_args(host="127.0.0.1", port=self.port, app=app)
        super().__init__([PYTHON, "-m", *args[:-1], *extra, args[-1]], env, "granian")
        wait_for_port(self.port, 60, self.proc, self.log)


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found under /usr/lib/postgresql (apt-get install postgresql)")
    return str(found[-1])


class PostgresServer:
    """A private PostgreSQL cluster (initdb in a temporary folder, a free port, trust auth): ours
    to stop, restart and delete, never the shared server. Runs as the `postgres` user (runuser)."""

    def __init__(self, port: int | None = None):
        import shutil

        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="jauge-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                          "--no-sync")
        self.start()

    @staticmethod
    def _as_postgres(*args: str, timeout: float = 120) -> None:
        result = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                                timeout=timeout, cwd="/tmp")
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.logfile), "-w",
                          "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: disconnect everyone and shut down cleanly; `immediate`: as if it crashed."""
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return subprocess.run(["runuser", "-u", "postgres", "--", _pg_bin("pg_ctl"), "-D", str(self.data), "status"],
                              capture_output=True, cwd="/tmp").returncode == 0

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        import shutil

        if self.data.exists() and self.running():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()
