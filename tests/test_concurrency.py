"""Concurrency on the real PostgreSQL: many threads, every event delivered and processed twice."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from django.db import connections
from django.test import Client

from campaigns.models import CampaignTotal, LedgerEntry, PaymentEvent
from campaigns.services import intake, reconcile
from tests.factories import post_webhook, webhook_body

pytestmark = [pytest.mark.postgres]

THREADS = 8
DONATIONS = 500
REFUNDED = 40  # a partial refund on the first 40 donations


def _workload() -> tuple[list[bytes], int, int, int]:
    bodies = []
    total = 0
    for i in range(DONATIONS):
        amount = 100 + (i % 17) * 50
        donor = {"name": "", "email": f"donor{i % 120}@example.org", "anonymous": False}
        bodies.append(webhook_body(event_id=f"evt_ok_{i}", donation_id=f"don_{i}", amount_minor=amount, donor=donor))
        total += amount
        if i < REFUNDED:
            bodies.append(
                webhook_body(event_id=f"evt_rf_{i}", type="donation.refunded", donation_id=f"don_{i}",
                             amount_minor=50, donor=donor)
            )
            total -= 50
    return bodies, total, DONATIONS, 120


def test_concurrent_double_delivery_and_double_processing_count_exactly_once(transactional_db, campaign):
    bodies, expected_total, expected_donations, expected_donors = _workload()
    # Every event twice: two HTTP deliveries, each followed by a processing run, in any thread.
    work = bodies * 2
    random.Random(42).shuffle(work)
    chunks = [work[i::THREADS] for i in range(THREADS)]
    statuses: Counter[int] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def run(chunk: list[bytes]) -> None:
        client = Client()
        try:
            start.wait()
            for body in chunk:
                response = post_webhook(client, body)
                with lock:
                    statuses[response.status_code] += 1
                event_id = response.json()["event"]
                stored = PaymentEvent.objects.get(provider="generic", event_id=event_id)
                intake.payment_event_process(event_id=stored.pk)
        except BaseException as exc:  # surfaced below with the thread's traceback
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    assert statuses == {202: len(bodies), 200: len(bodies)}
    assert PaymentEvent.objects.count() == len(bodies)
    assert PaymentEvent.objects.filter(status=PaymentEvent.Status.PROCESSED).count() == len(bodies)
    total = CampaignTotal.objects.get(campaign=campaign)
    assert total.total_minor == expected_total
    assert total.donation_count == expected_donations
    assert total.donor_count == expected_donors
    assert LedgerEntry.objects.count() == DONATIONS + REFUNDED
    assert reconcile.totals_reconcile(slug=campaign.slug) == []
