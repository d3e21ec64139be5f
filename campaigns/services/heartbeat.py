"""Heartbeats: proof, in the database, that beat schedules, workers consume and reconcile runs.

Beat sends the `heartbeat` task every HEARTBEAT_SECONDS through the broker; the worker that runs
it records its hostname, so a fresh `worker:<hostname>` row proves the whole path broker → worker
→ database for that worker. Every other task a worker finishes refreshes it too (at most every
few seconds per process), so a busy worker stays fresh even when idle peers take the heartbeats.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from campaigns.models import Heartbeat, PaymentEvent

WORKER_PREFIX = Heartbeat.WORKER_PREFIX
BEAT = Heartbeat.BEAT
RECONCILE = Heartbeat.RECONCILE

# hostname -> monotonic time of this process's last write (task_postrun throttle)
_last_written: dict[str, float] = {}


def heartbeat_record(*, key: str, at: datetime | None = None, data: dict | None = None) -> None:
    """Upsert one row: one statement, no lock held beyond it."""
    defaults = {"at": at or timezone.now()}
    if data is not None:
        defaults["data"] = data
    Heartbeat.objects.update_or_create(key=key, defaults=defaults)


def worker_heartbeat_record(*, hostname: str, throttle_seconds: float = 0) -> bool:
    """Record that the worker `hostname` just ran a task; skipped (False) if this process wrote
    it less than `throttle_seconds` ago."""
    now = time.monotonic()
    if throttle_seconds and now - _last_written.get(hostname, -1e9) < throttle_seconds:
        return False
    heartbeat_record(key=WORKER_PREFIX + hostname)
    _last_written[hostname] = now
    return True


def heartbeats_read() -> dict[str, datetime]:
    """{worker hostname: last heartbeat} for every worker ever seen."""
    rows = Heartbeat.objects.filter(key__startswith=WORKER_PREFIX).values_list("key", "at")
    return {key[len(WORKER_PREFIX):]: at for key, at in rows}


def heartbeat_age(*, key: str) -> float | None:
    """Seconds since `key` last beat; None if it never did."""
    at = Heartbeat.objects.filter(key=key).values_list("at", flat=True).first()
    return None if at is None else max(0.0, (timezone.now() - at).total_seconds())


def freshest_worker_age() -> float | None:
    """Seconds since any worker last consumed a task (None: no worker ever did)."""
    beats = heartbeats_read()
    if not beats:
        return None
    return max(0.0, (timezone.now() - max(beats.values())).total_seconds())


def workers_forget(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Drop workers gone for a day (replaced containers get new hostnames)."""
    deleted, _ = Heartbeat.objects.filter(
        key__startswith=WORKER_PREFIX, at__lt=timezone.now() - older_than
    ).delete()
    return deleted


def max_age_seconds() -> int:
    return settings.HEARTBEAT_MAX_AGE_SECONDS


def worker_stuck_reason(*, hostname: str, started_at: datetime, limit_seconds: float) -> str | None:
    """Why the worker `hostname` should be replaced, or None. It is stuck when it has not run a
    task for `limit_seconds` (counting from `started_at` if it never did) while work it could
    take exists: beat's heartbeats are being run by others, or an event has waited that long."""
    now = timezone.now()
    last = Heartbeat.objects.filter(key=WORKER_PREFIX + hostname).values_list("at", flat=True).first()
    idle = (now - max(last or started_at, started_at)).total_seconds()
    if idle <= limit_seconds:
        return None
    beat_age = heartbeat_age(key=BEAT)
    if beat_age is not None and beat_age < settings.HEARTBEAT_MAX_AGE_SECONDS:
        return f"no task run for {idle:.0f} s while other workers run beat's heartbeats"
    cutoff = now - timedelta(seconds=limit_seconds)
    if PaymentEvent.objects.filter(status=PaymentEvent.Status.RECEIVED, received_at__lt=cutoff).exists():
        return f"no task run for {idle:.0f} s while payment events wait"
    return None
