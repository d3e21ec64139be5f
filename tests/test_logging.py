"""Errors are seen: with DEBUG=false a failed request or task writes its traceback to stderr."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.live import request

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_and_fail(**env: str) -> str:
    """A real gunicorn with DEBUG=false; GET a view that raises; return what the server wrote to stderr."""
    port = _free_port()
    environment = {**os.environ, "DEBUG": "false", "DJANGO_SETTINGS_MODULE": "tests.error_site",
                   "DATABASE_URL": "sqlite:///:memory:", **env}
    environment.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _headers, body = request("GET", f"http://127.0.0.1:{port}/boom/", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start: {server.stderr.read()}") from None
                time.sleep(0.2)
        assert status == 500
        assert b"DeliberateFailure" not in body  # the reader sees no traceback
        time.sleep(0.5)
    finally:
        server.terminate()
        try:
            _out, err = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            _out, err = server.communicate()
    return err


def test_a_500_in_a_view_writes_its_traceback_to_stderr():
    err = _serve_and_fail()
    assert "Internal Server Error: /boom/" in err
    assert "Traceback (most recent call last)" in err
    assert "DeliberateFailure: a view failed on purpose" in err


def test_with_log_format_json_the_500_is_one_json_line_with_its_traceback():
    err = _serve_and_fail(LOG_FORMAT="json")
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    failures = [r for r in records if r.get("logger") == "django.request"]
    assert failures, err
    assert failures[0]["level"] == "ERROR"
    assert "Internal Server Error: /boom/" in failures[0]["message"]
    assert "DeliberateFailure: a view failed on purpose" in failures[0]["exc_info"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_a_failed_task_writes_its_traceback_to_the_workers_stderr(log_format):
    from campaigns import tasks
    from tests.worker import celery_worker, wait_until

    with celery_worker(concurrency=1, LOG_FORMAT=log_format, DEBUG="false") as worker:
        # No such donation: DoesNotExist is not retried, the task fails.
        tasks.sandbox_webhook_send.apply_async(args=(987654321, "confirm"))
        # (Other tasks of this run may fail in the same worker: look for this one's error.)
        wait_until(lambda: "Donation matching query does not exist" in worker.output(), timeout=60)
        time.sleep(0.3)
        output = worker.output()
    if log_format == "json":
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        failed = [r for r in records if "raised unexpected" in r.get("message", "")
                  and "Donation matching query" in r.get("exc_info", "")]
        assert failed, output[-3000:]
        assert "Traceback (most recent call last)" in failed[0]["exc_info"]
        assert "Donation.DoesNotExist" in failed[0]["exc_info"]
    else:
        assert "raised unexpected" in output and "Traceback (most recent call last)" in output


def test_sentry_starts_with_its_dsn_and_sends_no_personal_data():
    code = ("import django; django.setup()\nimport sentry_sdk\nc = sentry_sdk.get_client()\n"
            "print(c.is_active(), c.options['send_default_pii'], "
            "sorted(i for i in c.integrations if i in ('django', 'celery')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings",
                                 "SENTRY_DSN": "http://public@127.0.0.1:9/1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True False ['celery', 'django']"
