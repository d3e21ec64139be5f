"""Reads for operators (/metrics, health checks): what is waiting, failing or stale, from the
database, so every web process answers the same whatever the number of processes.

Each query uses an index (status, partial receipt index) except the count of processed events,
which scans the events' (status, received_at) index: a scrape every 15-30 s, not a reader path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from campaigns.models import RECEIPT_SOURCES, Donation, Heartbeat, PaymentEvent, StatementLine


@dataclass
class OpsSnapshot:
    events_by_status: dict[str, int]
    oldest_unprocessed_age: float  # seconds; 0 when nothing waits
    receipts_due: int
    pledges_pending: int
    pledges_pending_minor: dict[str, int]  # currency -> minor units
    reconcile_drift: int | None  # None: no reconcile ran yet
    reconcile_age: float | None
    beat_age: float | None
    worker_ages: dict[str, float] = field(default_factory=dict)
    statement_lines_waiting: int = 0


def _statement_lines_waiting() -> int:
    """Bank-statement lines nobody has settled yet: still to match (a worker's job) or waiting
    in the review queue (an editor's)."""
    return StatementLine.objects.filter(
        outcome__in=(StatementLine.Outcome.PENDING, StatementLine.Outcome.REVIEW)
    ).count()


def ops_snapshot() -> OpsSnapshot:
    """Everything /metrics reports from the database (a handful of indexed queries)."""
    now = timezone.now()
    by_status = dict.fromkeys(PaymentEvent.Status.values, 0)
    by_status.update(
        PaymentEvent.objects.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    oldest = PaymentEvent.objects.filter(status=PaymentEvent.Status.RECEIVED).aggregate(at=Min("received_at"))["at"]
    receipts_due = Donation.objects.filter(
        Q(receipt_sent_at__isnull=True, status=Donation.Status.CONFIRMED, source__in=RECEIPT_SOURCES)
        & ~Q(donor_email="")
    ).count()
    pending = (
        Donation.objects.filter(status=Donation.Status.PENDING)
        .order_by()
        .values("currency")
        .annotate(n=Count("pk"), minor=Sum("amount_minor"))
    )
    beats = {row.key: row for row in Heartbeat.objects.all()}
    reconcile = beats.get(Heartbeat.RECONCILE)
    beat = beats.get(Heartbeat.BEAT)
    return OpsSnapshot(
        events_by_status=by_status,
        oldest_unprocessed_age=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        receipts_due=receipts_due,
        pledges_pending=sum(row["n"] for row in pending),
        pledges_pending_minor={row["currency"]: row["minor"] or 0 for row in pending},
        reconcile_drift=int(reconcile.data.get("drifts", 0)) if reconcile else None,
        reconcile_age=(now - reconcile.at).total_seconds() if reconcile else None,
        beat_age=(now - beat.at).total_seconds() if beat else None,
        worker_ages={
            key[len(Heartbeat.WORKER_PREFIX):]: max(0.0, (now - row.at).total_seconds())
            for key, row in beats.items()
            if key.startswith(Heartbeat.WORKER_PREFIX)
        },
        statement_lines_waiting=_statement_lines_waiting(),
    )
