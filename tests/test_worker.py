"""Real Celery workers: end to end on Redis, a SIGKILLed worker, and the embedded filesystem broker."""

from __future__ import annotations

import re

import pytest

from bench.harness import Gunicorn
from campaigns.models import CampaignTotal, LedgerEntry, PaymentEvent
from campaigns.tasks import sweep_unprocessed
from tests.factories import post_webhook, webhook_body
from tests.live import get_json, post_signed
from tests.worker import celery_worker, process_env, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.worker]


def _processed() -> int:
    return PaymentEvent.objects.filter(status=PaymentEvent.Status.PROCESSED).count()


def test_killed_worker_loses_nothing_and_counts_nothing_twice(transactional_db, campaign, client):
    events = 300
    expected = 0
    for i in range(events):
        amount = 100 + i
        expected += amount
        body = webhook_body(event_id=f"evt_k{i}", donation_id=f"don_k{i}", amount_minor=amount)
        assert post_webhook(client, body).status_code == 202
    # A few deliveries twice: duplicates on the wire must not count either.
    for i in range(0, events, 10):
        assert post_webhook(client, webhook_body(event_id=f"evt_k{i}", donation_id=f"don_k{i}",
                                                 amount_minor=100 + i)).status_code == 200

    with celery_worker(concurrency=2) as first:
        wait_until(lambda: _processed() >= 5, timeout=60, message="the first worker to start applying events")
        first.kill()  # SIGKILL to the whole process group, mid-flight
    in_flight = events - _processed()
    assert in_flight > 0, "the worker finished before it could be killed; raise `events`"

    # A new worker; the sweeper (sent through the broker, as beat would) re-enqueues what the
    # killed worker had taken from Redis and never acknowledged.
    with celery_worker(concurrency=2, SWEEP_AFTER_SECONDS="0"):
        def all_applied() -> bool:
            if _processed() == events:
                return True
            sweep_unprocessed.delay()
            return False

        wait_until(all_applied, timeout=120, interval=1, message=f"{in_flight} in-flight events to be applied")

    total = CampaignTotal.objects.get(campaign=campaign)
    assert (total.total_minor, total.donation_count) == (expected, events)
    assert LedgerEntry.objects.count() == events
    assert not PaymentEvent.objects.exclude(status=PaymentEvent.Status.PROCESSED).exists()


def test_embedded_filesystem_broker_runs_a_real_worker(transactional_db, campaign, tmp_path):
    """What `make run` uses: kombu's filesystem transport, no broker server at all."""
    (tmp_path / "broker" / "queue").mkdir(parents=True)
    (tmp_path / "broker" / "control").mkdir(parents=True)
    env = process_env(CELERY_BROKER_URL="filesystem://", JAUGE_VAR_DIR=str(tmp_path))
    body = webhook_body(event_id="evt_fs", donation_id="don_fs", amount_minor=1234)
    with Gunicorn(env, workers=1) as web:
        assert post_signed(web.url, body)[0] == 202
        # The message is a file in the embedded broker's queue folder until a worker takes it.
        assert list((tmp_path / "broker" / "queue").iterdir())
        with celery_worker(concurrency=1, CELERY_BROKER_URL="filesystem://", JAUGE_VAR_DIR=str(tmp_path)):
            wait_until(lambda: CampaignTotal.objects.get(campaign=campaign).total_minor == 1234,
                       timeout=60, message="the filesystem-broker worker to apply the event")
            # The snapshot is refreshed just after the worker's commit: the served total follows.
            wait_until(lambda: get_json(f"{web.url}/api/campaigns/{campaign.slug}/progress.json")[1]["total_minor"]
                       == 1234, timeout=10, message="progress.json to show the new total")


def _other_backends() -> set[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cursor.fetchall()}


def test_worker_keeps_its_database_connection_between_tasks(transactional_db, campaign, client):
    """Celery's Django fixup would open a PostgreSQL backend per task (more work than the task)."""
    before = _other_backends()  # connections of earlier tests may still be closing
    no_receipt = {"name": "Marie", "email": "", "anonymous": False}
    with celery_worker(concurrency=1):
        body = webhook_body(event_id="evt_c0", donation_id="don_c0", donor=no_receipt)
        assert post_webhook(client, body).status_code == 202
        wait_until(lambda: _processed() == 1, timeout=30, message="the first event to be applied")
        kept = _other_backends() - before
        assert len(kept) == 1, f"the worker should keep one open connection, found backends {kept}"
        for i in range(1, 21):
            body = webhook_body(event_id=f"evt_c{i}", donation_id=f"don_c{i}", donor=no_receipt)
            assert post_webhook(client, body).status_code == 202
        wait_until(lambda: _processed() == 21, timeout=30, message="twenty more events to be applied")
        assert _other_backends() - before == kept


def test_receipts_of_a_burst_go_out_in_a_few_batched_tasks(transactional_db, campaign, client):
    from campaigns.models import Donation

    donations = 40
    with celery_worker(concurrency=2, RECEIPTS_BATCH_SECONDS="1") as worker:
        for i in range(donations):
            body = webhook_body(event_id=f"evt_r{i}", donation_id=f"don_r{i}", donor={
                "name": "Marie", "email": f"donor{i}@example.org", "anonymous": False})
            assert post_webhook(client, body).status_code == 202
        wait_until(lambda: not Donation.objects.filter(receipt_sent_at__isnull=True).exists()
                   and Donation.objects.count() == donations,
                   timeout=60, message="every receipt to be claimed")
        # Claimed first, then printed by the console mail backend, then the task ends.
        succeeded = re.compile(r"campaigns\.tasks\.send_receipts\[[^]]+\] succeeded")
        wait_until(lambda: all(f"To: donor{i}@example.org" in worker.output() for i in range(donations))
                   and succeeded.search(worker.output().rsplit("To: ", 1)[-1]),
                   timeout=30, message="every receipt to be printed and its task to end")
        output = worker.output()
    batches = len(succeeded.findall(output))
    assert 1 <= batches <= 5, f"{batches} receipt tasks for {donations} donations"
    for i in range(donations):
        assert f"donor{i}@example.org" in output  # the console mail backend printed each receipt once
    assert output.count("To: donor7@example.org") == 1


def test_receipts_wait_behind_webhooks_in_the_broker(transactional_db, campaign):
    """On Redis, kombu keeps one list per priority and a worker empties the first before the last."""
    import redis
    from django.conf import settings

    from campaigns.services import receipts
    from campaigns.tasks import process_payment_event

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    lowest = f"{queue}\x06\x16{receipts.RECEIPTS_PRIORITY}"
    broker.delete(queue, lowest)
    try:
        receipts.receipts_schedule()
        process_payment_event.delay(1)
        assert (broker.llen(queue), broker.llen(lowest)) == (1, 1)
    finally:
        broker.delete(queue, lowest)


def test_a_task_sent_inside_a_transaction_reaches_the_broker_only_once_it_commits(transactional_db):
    """campaigns.queue: `.delay()` and `queue.send` wait for the commit; a rollback sends nothing."""
    import redis
    from django.conf import settings
    from django.db import transaction

    from campaigns import queue
    from campaigns.tasks import process_payment_event

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    name = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.delete(name)
    try:
        with transaction.atomic():
            process_payment_event.delay(1)
            queue.send("process_payment_event", 2)
            assert broker.llen(name) == 0  # a worker could otherwise read before the commit
        assert broker.llen(name) == 2
        with pytest.raises(RuntimeError), transaction.atomic():
            queue.send("process_payment_event", 3)
            raise RuntimeError
        assert broker.llen(name) == 2
        assert process_payment_event.delay(4) is not None  # outside a transaction: sent at once
        assert broker.llen(name) == 3
    finally:
        broker.delete(name)
