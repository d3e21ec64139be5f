"""A real Celery worker (and beat) in a subprocess, on this run's Redis queue and test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

from bench.harness import wait_until  # noqa: F401  (re-exported: tests poll with it)

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """The URL of the database the tests are using now (pytest-django's test database)."""
    db = settings.DATABASES["default"]
    if connection.vendor != "postgresql":
        raise RuntimeError("a worker subprocess needs the PostgreSQL test database")
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = os.environ.copy()
    env["DATABASE_URL"] = test_database_url()
    env.update(overrides)
    return env


class CeleryProcess:
    def __init__(self, args: list[str], env: dict[str, str], ready_marker: str):
        self.log = tempfile.NamedTemporaryFile(prefix="jauge-celery-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._wait_for(ready_marker)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def _wait_for(self, marker: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.output():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery exited early:\n{self.output()}")
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"celery not ready after {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its pool children."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def celery_worker(concurrency: int = 2, **env_overrides: str):
    """Start a worker on this run's queue; stop it on exit. Needs a transactional test."""
    env = process_env(**env_overrides)
    worker = CeleryProcess(
        ["worker", "-Q", env["CELERY_QUEUE"], "--concurrency", str(concurrency), "--loglevel", "info",
         "--without-mingle", "--without-gossip", "--hostname", f"test-{os.getpid()}-{time.monotonic_ns()}@%h"],
        env,
        ready_marker="ready.",
    )
    try:
        yield worker
    finally:
        worker.stop()
