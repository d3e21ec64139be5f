"""PostgreSQL restarts under live web processes and a worker: webhooks answer 503 + Retry-After
at once while it is down (never 202 for what was not stored, never a hang), and everything
reconnects by itself when it is back; nothing is applied twice.

The database server is our own (initdb into a temporary folder, a free port): the test stops it.
"""

from __future__ import annotations

import os
import time

import psycopg
import pytest

from bench.harness import Gunicorn, PostgresServer, django_run, manage
from campaigns.signing import SIGNATURE_HEADER, sign
from tests.factories import WEBHOOK_SECRET, webhook_body
from tests.live import get_json, post_signed, request
from tests.worker import celery_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.worker]

ANSWER_WITHIN = 3.0


def _own_postgres() -> PostgresServer:
    if os.geteuid() != 0:
        if os.environ.get("REQUIRE_SERVICES"):
            pytest.fail("a PostgreSQL of the test's own needs root (runuser -u postgres)")
        pytest.skip("a PostgreSQL of the test's own needs root (runuser -u postgres)")
    return PostgresServer()


def _scalar(url: str, query: str):
    with psycopg.connect(url, connect_timeout=3) as conn:
        return conn.execute(query).fetchone()[0]


def _timed_post(url: str, event: str, amount: int) -> tuple[int, dict[str, str], float]:
    body = webhook_body(event_id=f"evt_{event}", donation_id=f"don_{event}", amount_minor=amount)
    started = time.monotonic()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET, int(time.time()))}
    status, answer_headers, _ = request("POST", f"{url}/hooks/generic/", body, headers, timeout=10)
    return status, answer_headers, time.monotonic() - started


def test_a_database_restart_answers_503_then_recovers_without_counting_twice(transactional_db):
    pg = _own_postgres()
    try:
        db_url = pg.create_database("jauge")
        env = {**os.environ, "DATABASE_URL": db_url, "DB_CONNECT_TIMEOUT": "2"}
        manage(env, "migrate", "--noinput", "-v0")
        django_run(env, """
from datetime import timedelta
from django.utils import timezone
from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_upsert
now = timezone.now()
campaign_upsert(slug="test-campaign", defaults=dict(title="T", goal_minor=10**8, currency="EUR",
    status=Campaign.Status.ACTIVE, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=29)))
""")
        accepted: dict[str, int] = {}  # event -> amount, for every 2xx
        with Gunicorn(env, workers=2) as web, celery_worker(concurrency=2, DATABASE_URL=db_url):
            for i in range(5):
                status, _, _ = _timed_post(web.url, f"up{i}", 100 + i)
                assert status == 202
                accepted[f"up{i}"] = 100 + i
            assert get_json(f"{web.url}/healthz")[0] == 200
            wait_until(lambda: _scalar(db_url, "SELECT count(*) FROM campaigns_ledgerentry") == 5, timeout=60,
                       message="the first events to be applied")

            pg.stop("fast")
            for i in range(6):
                status, headers, took = _timed_post(web.url, f"down{i}", 1000 + i)
                assert status == 503, status
                assert int(headers["Retry-After"]) > 0
                assert took < ANSWER_WITHIN, f"answered in {took:.2f} s"
            status, health = get_json(f"{web.url}/healthz", timeout=10)
            assert (status, health["database"].startswith("error"), health["storing"]) == (503, True, False)
            assert get_json(f"{web.url}/healthz/live")[0] == 200
            assert get_json(f"{web.url}/healthz/ready", timeout=10)[0] == 503

            pg.start()
            # The provider delivers again what got 503, plus new events; web and worker reconnect.
            for i in range(6):
                status, _, _ = _timed_post(web.url, f"down{i}", 1000 + i)
                assert status == 202, status
                accepted[f"down{i}"] = 1000 + i
            for i in range(5):
                status, _, _ = _timed_post(web.url, f"after{i}", 10_000 + i)
                assert status == 202
                accepted[f"after{i}"] = 10_000 + i
            # A retry of an event already stored before the outage: a duplicate, not a new gift.
            assert _timed_post(web.url, "up0", 100)[0] == 200
            expected = sum(accepted.values())
            wait_until(lambda: _scalar(db_url, "SELECT total_minor FROM campaigns_campaigntotal") == expected,
                       timeout=120, interval=0.5, message="every stored event to be applied after the restart")
            assert get_json(f"{web.url}/healthz")[0] == 200
        assert _scalar(db_url, "SELECT count(*) FROM campaigns_ledgerentry") == len(accepted)
        assert _scalar(db_url, "SELECT coalesce(sum(delta_minor), 0) FROM campaigns_ledgerentry") == expected
        assert _scalar(db_url, "SELECT count(*) FROM campaigns_paymentevent WHERE status <> 'processed'") == 0
        assert "OK" in manage(env, "reconcile")
    finally:
        pg.destroy()


def test_a_task_that_meets_a_dead_database_retries_until_it_is_back(transactional_db):
    """Events stored, then the database stops before the worker applies them: the tasks fail on
    OperationalError, Celery retries them (autoretry_for), and they land once, when it is back."""
    pg = _own_postgres()
    try:
        db_url = pg.create_database("jauge")
        env = {**os.environ, "DATABASE_URL": db_url}
        manage(env, "migrate", "--noinput", "-v0")
        django_run(env, """
from datetime import timedelta
from django.utils import timezone
from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_upsert
now = timezone.now()
campaign_upsert(slug="test-campaign", defaults=dict(title="T", goal_minor=10**8, currency="EUR",
    status=Campaign.Status.ACTIVE, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=29)))
""")
        with Gunicorn(env, workers=1) as web:
            for i in range(5):
                assert post_signed(web.url, webhook_body(event_id=f"evt_r{i}", donation_id=f"don_r{i}",
                                                         amount_minor=500))[0] == 202
        pg.stop("fast")
        with celery_worker(concurrency=2, DATABASE_URL=db_url) as worker:
            wait_until(lambda: "Retry in" in worker.output(), timeout=60,
                       message=f"a task to meet the dead database and retry:\n{worker.output()[-2000:]}")
            pg.start()
            wait_until(lambda: _scalar(db_url, "SELECT total_minor FROM campaigns_campaigntotal") == 2500,
                       timeout=180, interval=1, message="the retried tasks to apply the events")
        assert _scalar(db_url, "SELECT count(*) FROM campaigns_ledgerentry") == 5
    finally:
        pg.destroy()
