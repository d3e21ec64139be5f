"""Thin Celery tasks: ids in, a service call, retries declared on the decorator.

Celery is a trigger, not the source of truth: every task's input is in the database, and the
sweeper re-enqueues what a dead broker or a killed worker lost. Services send these tasks by
name through `campaigns.queue` (they never import this module); every task's base is
`queue.AfterCommitTask` (config/celery.py).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from campaigns import metrics
from campaigns.providers.sandbox import sandbox_enabled
from campaigns.providers.stripe import SubscriptionUnavailable
from campaigns.services import heartbeat as heartbeat_service
from campaigns.services import (
    intake,
    mes_dons,
    milestones,
    pledge_verification,
    pledges,
    progress,
    receipts,
    reconcile,
    statement_matching,
    subscriptions,
    tax_receipts,
)

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def process_payment_event(event_id: int) -> None:
    started = timezone.now()
    event = intake.payment_event_process(event_id=event_id)
    # Observed once per event: only by the run that applied it (a redelivery finds it done).
    if event.processed_at is not None and event.processed_at >= started:
        metrics.event_latency_observe(seconds=(event.processed_at - event.received_at).total_seconds())


@shared_task(acks_late=True)
def sweep_unprocessed() -> None:
    intake.unprocessed_events_sweep(older_than_seconds=settings.SWEEP_AFTER_SECONDS)
    statement_matching.pending_statement_lines_sweep(older_than_seconds=settings.SWEEP_AFTER_SECONDS)
    tax_receipts.tax_receipt_runs_sweep(older_than_seconds=settings.SWEEP_AFTER_SECONDS)
    subscriptions.subscription_syncs_sweep(older_than_seconds=settings.SWEEP_AFTER_SECONDS)


@shared_task(acks_late=True)
def refresh_lagging_progress() -> None:
    progress.progress_lagging_refresh()


@shared_task(bind=True)
def heartbeat(self) -> None:
    """Sent by beat every HEARTBEAT_SECONDS (expiring soon after): running it proves beat
    schedules and this worker consumes, end to end (see services/heartbeat.py)."""
    heartbeat_service.heartbeat_record(key=heartbeat_service.BEAT)
    heartbeat_service.worker_heartbeat_record(hostname=self.request.hostname)
    heartbeat_service.workers_forget()  # replaced containers come back under new names: a handful of rows


@shared_task(acks_late=True)
def reconcile_totals() -> None:
    """Periodic check: log drift; repairs are an operator's decision (`reconcile --fix`)."""
    for drift in reconcile.totals_reconcile(fix=False):
        logger.error("ledger drift: %s", drift)


# requests' errors are OSErrors: a web process that is down or restarting is retried.
@shared_task(acks_late=True, autoretry_for=(OSError, OperationalError), retry_backoff=True, max_retries=8)
def sandbox_webhook_send(donation_id: int, decision: str) -> None:
    if not sandbox_enabled():
        # Queued before the sandbox was switched off: test money must not reach a real total.
        logger.error("sandbox decision for donation %s dropped: the sandbox is off", donation_id)
        return
    pledges.sandbox_webhook_send(donation_id=donation_id, decision=decision)


@shared_task(acks_late=True, autoretry_for=(OSError, OperationalError), retry_backoff=True, max_retries=6)
def send_receipts() -> None:
    """Every receipt due, in batches (scheduled by confirmations, and by beat as a safety net)."""
    receipts.receipts_send_due()


@shared_task(acks_late=True)
def expire_pledges() -> None:
    pledges.pledges_expire()


@shared_task(acks_late=True, autoretry_for=(OSError, OperationalError), retry_backoff=True, max_retries=6)
def send_pledge_details(donation_id: int) -> None:
    """The bank details and the link that confirms a bank-transfer promise, to its donor."""
    pledge_verification.pledge_details_send(donation_id=donation_id)


@shared_task(acks_late=True, autoretry_for=(OSError, OperationalError), retry_backoff=True, max_retries=6)
def send_donor_link(donor_key: str, locale: str) -> None:
    """A fresh *Mes dons* link, to the address behind `donor_key` if it ever gave."""
    mes_dons.donor_link_send(donor_key=donor_key, locale=locale)


@shared_task(acks_late=True, autoretry_for=(SubscriptionUnavailable, OperationalError), retry_backoff=True,
             max_retries=6)
def sync_subscription(provider: str, subscription_id: str) -> None:
    """A monthly gift changed at its provider: read its state back (no money moves)."""
    subscriptions.subscription_sync(provider=provider, subscription_id=subscription_id)


# --- Bank statements ------------------------------------------------------------------------


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def match_statement(import_id: int) -> None:
    """Match an import's pending lines (a re-run only finds what is still pending)."""
    statement_matching.statement_import_match(import_id=import_id)


@shared_task(acks_late=True, autoretry_for=(OSError, OperationalError), retry_backoff=True, max_retries=6)
def send_milestone_emails(campaign_id: int) -> None:
    """Tell the editors (MILESTONE_EMAILS) about the milestones the campaign has just reached."""
    milestones.milestone_emails_send(campaign_id=campaign_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def tax_receipts_run_step(run_id: int) -> None:
    """A step of a bulk yearly run of tax receipts (it sends the next step until the run is done)."""
    tax_receipts.tax_receipt_run_step(run_id=run_id)


@shared_task(acks_late=True, autoretry_for=(OSError, OperationalError), retry_backoff=True, max_retries=6)
def send_tax_receipt_emails() -> None:
    """Yearly summaries and corrected tax receipts, e-mailed to their donors (beat: safety net)."""
    tax_receipts.tax_receipt_emails_send()
