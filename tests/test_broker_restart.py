"""The broker restarts under a running worker and beat: both keep going, nobody restarts them.

Our own redis-server (free port, no persistence) is the broker; it is killed and started again
on the same port while a real worker consumes and a real beat schedules. This is the guard for
Celery/kombu upgrades (see the pin in pyproject.toml).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from django.core.management import call_command

from bench.harness import Gunicorn, RedisServer
from campaigns.models import CampaignTotal, LedgerEntry, PaymentEvent
from tests.factories import webhook_body
from tests.live import post_signed
from tests.worker import CeleryProcess, celery_worker, process_env, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.worker]


def _send(url: str, prefix: str, count: int, amount: int = 100) -> list[int]:
    codes = []
    for i in range(count):
        body = webhook_body(event_id=f"evt_{prefix}{i}", donation_id=f"don_{prefix}{i}", amount_minor=amount)
        codes.append(post_signed(url, body, timeout=5)[0])
    return codes


@contextmanager
def _campaign_locked(campaign_id: int):
    """Hold the campaign's counter row locked from another connection (as a long transaction would)."""
    import psycopg

    from tests.worker import test_database_url

    with psycopg.connect(test_database_url()) as conn:
        conn.execute("SELECT 1 FROM campaigns_campaigntotal WHERE campaign_id = %s FOR UPDATE", (campaign_id,))
        yield
        conn.rollback()


def _applied(prefix: str) -> int:
    events = PaymentEvent.objects.filter(event_id__startswith=f"evt_{prefix}")
    return events.filter(status=PaymentEvent.Status.PROCESSED).count()


def test_a_worker_keeps_consuming_after_its_broker_restarts(transactional_db, campaign):
    redis = RedisServer()
    broker = f"{redis.url}/0"
    env = process_env(CELERY_BROKER_URL=broker)
    try:
        with Gunicorn(env, workers=2) as web, celery_worker(concurrency=2, CELERY_BROKER_URL=broker) as worker:
            pid = worker.proc.pid
            assert _send(web.url, "before", 20) == [202] * 20
            wait_until(lambda: _applied("before") == 20, timeout=60, message="the events sent before the restart")

            # Tasks in flight when the broker goes away: the campaign's counter is held locked, so
            # the worker's two processes sit in their tasks; they finish (and acknowledge) after.
            with _campaign_locked(campaign.pk):
                assert _send(web.url, "during", 4) == [202] * 4
                wait_until(lambda: "Task campaigns.tasks.process_payment_event" in worker.output()
                           and worker.output().count("received") >= 2, timeout=30,
                           message="the worker to take tasks")
                time.sleep(0.5)
                redis.kill()
                time.sleep(1)
                redis = RedisServer(port=redis.port)
                time.sleep(1)

            assert _send(web.url, "after", 20) == [202] * 20
            wait_until(lambda: _applied("after") == 20, timeout=90,
                       message=f"the worker to consume after the broker restart:\n{worker.output()[-3000:]}")
            assert worker.proc.poll() is None and worker.proc.pid == pid
            assert "Unrecoverable error" not in worker.output()
        # What the broker lost during the outage, the sweeper re-sends (not this test's subject);
        # nothing was counted twice meanwhile.
        applied = _applied("")
        assert LedgerEntry.objects.count() == applied
        assert CampaignTotal.objects.get(campaign=campaign).total_minor == applied * 100
    finally:
        redis.stop()


def test_beat_keeps_scheduling_after_its_broker_restarts(transactional_db, campaign, tmp_path):
    """Beat sends the heartbeat task every second here; after the restart the worker still
    receives fresh ones (the heartbeat time moves on), with the same beat and worker processes."""
    from campaigns.services import heartbeat

    redis = RedisServer()
    broker = f"{redis.url}/0"
    env = process_env(CELERY_BROKER_URL=broker, HEARTBEAT_SECONDS="1", JAUGE_VAR_DIR=str(tmp_path))
    beat = None
    try:
        with celery_worker(concurrency=1, CELERY_BROKER_URL=broker, HEARTBEAT_SECONDS="1",
                           JAUGE_VAR_DIR=str(tmp_path)) as worker:
            beat = CeleryProcess(["beat", "--loglevel", "info", "--schedule", str(tmp_path / "schedule")], env,
                                 ready_marker="beat: Starting")
            wait_until(lambda: heartbeat.heartbeats_read(), timeout=60, message="a first heartbeat")
            redis.kill()
            time.sleep(2)
            redis = RedisServer(port=redis.port)
            restarted_at = time.time()
            wait_until(lambda: any(at.timestamp() > restarted_at + 1 for at in heartbeat.heartbeats_read().values()),
                       timeout=60, message=f"a heartbeat after the restart:\n{beat.output()[-3000:]}")
            assert beat.proc.poll() is None and worker.proc.poll() is None
            # What the compose health checks run: this worker's heartbeat and beat's are fresh.
            (hostname,) = heartbeat.heartbeats_read()
            call_command("worker_health", "--hostname", hostname)
            call_command("worker_health", "--beat")
    finally:
        if beat is not None:
            beat.stop()
        redis.stop()
