"""The bulk yearly run through a real Celery worker: batches, live counts, done; and a run that
dies half-way resumes where it stopped without a gap."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns.models import Donation, TaxReceipt, TaxReceiptRun
from campaigns.services import tax_receipts
from tests.staff_world import staff_world
from tests.tax_receipt_helpers import assert_gapless, gift, local, org_enable
from tests.worker import celery_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.worker]


def _gifts(campaign, one_off: int, monthly_donors: int) -> None:
    for i in range(one_off):
        gift(campaign, 1000 + i, at=local(2025, 1 + i % 12), source=Donation.Source.MANUAL, email=f"o{i}@example.org")
    for d in range(monthly_donors):
        for month in (1, 2, 3):
            gift(campaign, 500, at=local(2025, month), monthly=True, email=f"m{d}@example.org", name=f"M {d}")


def test_a_real_worker_issues_the_years_receipts_in_batches_with_live_counts(transactional_db, campaign):
    org_enable()
    _gifts(campaign, one_off=240, monthly_donors=40)
    client = Client()
    client.force_login(staff_world()["finance"])
    seen: list[int] = []
    with celery_worker(TAX_RECEIPTS_BATCH="20"):
        response = client.post("/admin/campaigns/taxreceipt/run/", {"year": "2025"})
        run = TaxReceiptRun.objects.get()
        assert response["Location"].endswith(f"/run/{run.pk}/") and run.to_do == 280

        def done() -> bool:
            current = TaxReceiptRun.objects.get(pk=run.pk)
            seen.append(current.issued)
            return current.status == TaxReceiptRun.Status.DONE

        wait_until(done, timeout=120, interval=0.05, message="the yearly run to finish")
    bar = client.get(f"/admin/campaigns/taxreceipt/run/{run.pk}/progress/").content.decode()
    assert "280 reçu(s) émis sur 280" in bar and "every 1s" not in bar
    assert seen == sorted(seen) and seen[-1] == 280
    assert any(0 < issued < 280 for issued in seen), seen  # the counts moved batch by batch
    assert TaxReceipt.objects.filter(run=run).count() == 280
    assert TaxReceipt.objects.filter(kind="yearly").count() == 40
    assert_gapless(2025)


def test_a_run_that_dies_half_way_resumes_without_a_gap(transactional_db, campaign, monkeypatch):
    org_enable()
    _gifts(campaign, one_off=30, monthly_donors=10)
    run = tax_receipts.tax_receipt_run_start(year=2025)
    real_insert, calls = tax_receipts._gift_receipts_insert, []

    def dies_on_the_second_batch(*args, **kwargs):
        calls.append(1)
        receipts = real_insert(*args, **kwargs)  # inserted, numbers taken… then the worker dies
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return receipts

    monkeypatch.setattr(tax_receipts, "_gift_receipts_insert", dies_on_the_second_batch)
    with pytest.raises(SystemExit):
        tax_receipts.tax_receipt_run_step(run_id=run.pk, batch_size=10)
    run.refresh_from_db()
    assert (run.status, run.issued) == ("running", 10)  # the second batch's transaction rolled back
    assert_gapless(2025)
    monkeypatch.undo()
    assert tax_receipts.tax_receipt_run_start(year=2025).pk == run.pk  # the admin's "start" resumes it
    assert tax_receipts.tax_receipt_run_step(run_id=run.pk, batch_size=10) is True
    run.refresh_from_db()
    assert (run.status, run.issued, run.to_do) == ("done", 40, 40)
    assert TaxReceipt.objects.count() == 40
    assert_gapless(2025)


def test_a_run_whose_next_step_was_lost_is_swept_and_finished_by_a_worker(transactional_db, campaign):
    # The broker was down when the run's step was sent (queue.send logs and drops it): the run sat
    # "running" until Finance clicked again. The sweeper now sends the step again.
    from datetime import timedelta

    from django.utils import timezone

    from campaigns import tasks

    org_enable()
    _gifts(campaign, one_off=5, monthly_donors=2)
    run = tax_receipts.tax_receipt_run_start(year=2025)  # no worker: its step goes nowhere
    assert tax_receipts.tax_receipt_runs_sweep(older_than_seconds=60) == []  # just started: left alone
    TaxReceiptRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    with celery_worker():
        tasks.sweep_unprocessed()  # what beat runs every 30 s
        wait_until(lambda: TaxReceiptRun.objects.get(pk=run.pk).status == TaxReceiptRun.Status.DONE, timeout=60,
                   message="the swept run to finish")
    run.refresh_from_db()
    assert (run.issued, TaxReceipt.objects.count()) == (7, 7)
    assert_gapless(2025)
    # A run that moved a moment ago is still being worked on: not swept; a finished one never.
    TaxReceiptRun.objects.filter(pk=run.pk).update(status="running", stepped_at=timezone.now())
    assert tax_receipts.tax_receipt_runs_sweep(older_than_seconds=60) == []
    TaxReceiptRun.objects.filter(pk=run.pk).update(status="done", stepped_at=timezone.now() - timedelta(hours=1))
    assert tax_receipts.tax_receipt_runs_sweep(older_than_seconds=60) == []
