"""Broker down: the webhook endpoint still answers 202 at once and stores; the sweeper catches up.

Everything is real: our own redis-server as the broker (ours to kill), gunicorn serving the app
against the test database, then a Celery worker once the broker is back.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.harness import Gunicorn, RedisServer
from campaigns.models import CampaignTotal, PaymentEvent
from tests.factories import webhook_body
from tests.live import get_json, post_signed
from tests.worker import ROOT, celery_worker, process_env, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.worker]

# kombu's default publish retry would block ~6 s per call with the broker gone: 3 s proves it does not.
REQUEST_TIMEOUT = 3
# The first requests import the app in each gunicorn worker: slow on a loaded machine, and not
# what this test bounds.
WARM_UP_TIMEOUT = 30


def test_webhooks_are_stored_while_the_broker_is_down_and_applied_when_it_is_back(transactional_db, campaign):
    redis = RedisServer()
    broker = f"{redis.url}/0"
    env = process_env(CELERY_BROKER_URL=broker)
    try:
        with Gunicorn(env, workers=2) as web:
            # Broker up: the web workers hold pooled broker connections that are about to go stale.
            for i in range(4):
                status, _ = post_signed(web.url, webhook_body(event_id=f"evt_up{i}", donation_id=f"don_up{i}",
                                                              amount_minor=100), timeout=WARM_UP_TIMEOUT)
                assert status == 202
            assert get_json(f"{web.url}/healthz")[0] == 200

            redis.kill()
            for i in range(10):
                status, answer = post_signed(web.url, webhook_body(event_id=f"evt_down{i}", donation_id=f"don_d{i}",
                                                                   amount_minor=1000), timeout=REQUEST_TIMEOUT)
                assert (status, answer["status"]) == (202, "stored")
            # A retry by the provider while the broker is still down: a plain duplicate.
            status, _ = post_signed(web.url, webhook_body(event_id="evt_down0", donation_id="don_d0",
                                                          amount_minor=1000), timeout=REQUEST_TIMEOUT)
            assert status == 200
            status, health = get_json(f"{web.url}/healthz", timeout=REQUEST_TIMEOUT + 2)
            assert (status, health["database"]) == (503, "ok")
            assert health["broker"].startswith("error")
            assert health["storing"] is True  # degraded, but every webhook is stored
        assert PaymentEvent.objects.filter(event_id__startswith="evt_down").count() == 10
        assert CampaignTotal.objects.get(campaign=campaign).total_minor == 0

        # The broker comes back empty (no persistence): only the database remembers the events.
        redis = RedisServer(port=redis.port)
        with celery_worker(concurrency=2, CELERY_BROKER_URL=broker, SWEEP_AFTER_SECONDS="0"):
            # What beat does every 30 s, sent now through the revived broker.
            subprocess.run(
                [sys.executable, "-m", "celery", "-A", "config", "call", "campaigns.tasks.sweep_unprocessed",
                 "--queue", env["CELERY_QUEUE"]],
                cwd=ROOT, env=env, check=True, capture_output=True, timeout=60,
            )
            wait_until(lambda: CampaignTotal.objects.get(campaign=campaign).total_minor == 4 * 100 + 10 * 1000,
                       timeout=60, message="the sweeper to get the stored events applied")
        assert not PaymentEvent.objects.exclude(status=PaymentEvent.Status.PROCESSED).exists()
    finally:
        redis.stop()
