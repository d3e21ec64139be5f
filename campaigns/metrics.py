"""Prometheus metrics (names prefixed `jauge_`).

- Gauges are read from the database at scrape time (selectors/ops.py): right whatever the number
  of web processes, containers or workers.
- The two event counts that happen in many processes — webhook answers (web) and the time an
  event waited before it was applied (workers) — are kept in Redis hashes (HINCRBY), so every
  process adds to one count and any web process reports it. Without REDIS_URL (`make run`)
  they are kept per process. Counting never fails an answer: after a Redis error counting
  pauses for a few seconds (an unreachable Redis then delays one answer per pause by its 1 s
  timeout at most; the counts undercount meanwhile, the money is not affected).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter

from django.conf import settings

from campaigns.progress_cache import redis_client
from campaigns.selectors.ops import ops_snapshot

logger = logging.getLogger(__name__)

# Seconds from an event's arrival to its application (the sweeper's delay is 60 s by default).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
PAUSE_AFTER_ERROR_SECONDS = 5.0

_local_counts: Counter[str] = Counter()  # without Redis: this process's counts
_paused_until = 0.0


def _key(name: str) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:metrics:{name}"


def _redis():
    return redis_client(settings.REDIS_URL)


def _increment(name: str, fields: dict[str, float]) -> None:
    global _paused_until
    if not settings.REDIS_URL:
        for field_name, amount in fields.items():
            _local_counts[f"{name}|{field_name}"] += amount
        return
    if time.monotonic() < _paused_until:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for field_name, amount in fields.items():
            if isinstance(amount, float):
                pipe.hincrbyfloat(_key(name), field_name, amount)
            else:
                pipe.hincrby(_key(name), field_name, amount)
        pipe.execute()
    except Exception as exc:
        _paused_until = time.monotonic() + PAUSE_AFTER_ERROR_SECONDS
        logger.warning("metrics not counted (Redis unavailable for %ss): %r", PAUSE_AFTER_ERROR_SECONDS, exc)


def _read(name: str) -> dict[str, float]:
    if not settings.REDIS_URL:
        prefix = f"{name}|"
        return {key[len(prefix):]: value for key, value in _local_counts.items() if key.startswith(prefix)}
    raw = _redis().hgetall(_key(name))
    return {field_name.decode(): float(value) for field_name, value in raw.items()}


def webhook_answer_count(*, provider: str, status: int) -> None:
    _increment("webhook_responses", {f"{provider}|{status}": 1})


def event_latency_observe(*, seconds: float) -> None:
    """One event applied `seconds` after it arrived. Stored per bucket (not cumulative): three
    commands per event; the cumulative histogram is built when read."""
    bucket = next((str(bound) for bound in LATENCY_BUCKETS if seconds <= bound), "+Inf")
    _increment("event_latency", {bucket: 1, "sum": float(max(seconds, 0.0)), "count": 1})


class JaugeCollector:
    """Everything /metrics shows, gathered at scrape time."""

    def collect(self):
        yield from self._database_gauges()
        yield from self._redis_counts()

    def _database_gauges(self):
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("jauge_database_up", "1 when the database answered this scrape.")
        try:
            ops = ops_snapshot()
        except Exception as exc:
            logger.warning("metrics: database unavailable: %r", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        events = GaugeMetricFamily("jauge_payment_events", "Stored payment events by status.", labels=["status"])
        for status, count in sorted(ops.events_by_status.items()):
            events.add_metric([status], count)
        yield events
        yield GaugeMetricFamily(
            "jauge_payment_event_oldest_unprocessed_age_seconds",
            "Age of the oldest event still `received` (0: none waits).", value=ops.oldest_unprocessed_age,
        )
        yield GaugeMetricFamily("jauge_payment_events_failed", "Events that failed processing (editors can retry).",
                                value=ops.events_by_status.get("failed", 0))
        yield GaugeMetricFamily("jauge_refunds_deferred", "Refund events waiting for their donation's success.",
                                value=ops.events_by_status.get("deferred", 0))
        yield GaugeMetricFamily("jauge_receipts_due", "Confirmed donations whose receipt e-mail is not sent.",
                                value=ops.receipts_due)
        yield GaugeMetricFamily("jauge_pledges_pending", "Pending pledges (donations promised, not confirmed).",
                                value=ops.pledges_pending)
        pending_minor = GaugeMetricFamily("jauge_pledges_pending_minor", "Amount of pending pledges, minor units.",
                                          labels=["currency"])
        for currency, minor in sorted(ops.pledges_pending_minor.items()):
            pending_minor.add_metric([currency], minor)
        yield pending_minor
        yield GaugeMetricFamily("jauge_statement_lines_waiting",
                                "Bank-statement lines still to match or waiting in the review queue.",
                                value=ops.statement_lines_waiting)
        if ops.reconcile_drift is not None:
            yield GaugeMetricFamily("jauge_reconcile_drift", "Counters the last full reconcile found drifted.",
                                    value=ops.reconcile_drift)
            yield GaugeMetricFamily("jauge_reconcile_age_seconds", "Seconds since the last full reconcile.",
                                    value=ops.reconcile_age)
        if ops.beat_age is not None:
            yield GaugeMetricFamily("jauge_beat_heartbeat_age_seconds",
                                    "Seconds since a heartbeat task sent by beat ran.", value=ops.beat_age)
        workers = GaugeMetricFamily("jauge_worker_heartbeat_age_seconds",
                                    "Seconds since each worker last ran a task.", labels=["worker"])
        for worker, age in sorted(ops.worker_ages.items()):
            workers.add_metric([worker], age)
        yield workers
        yield GaugeMetricFamily(
            "jauge_workers_fresh", "Workers whose heartbeat is younger than HEARTBEAT_MAX_AGE_SECONDS.",
            value=sum(1 for age in ops.worker_ages.values() if age <= settings.HEARTBEAT_MAX_AGE_SECONDS),
        )

    def _redis_counts(self):
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        try:
            answers = _read("webhook_responses")
            latency = _read("event_latency")
        except Exception as exc:
            logger.warning("metrics: Redis unavailable: %r", exc)
            return
        counter = CounterMetricFamily("jauge_webhook_responses", "Webhook answers by provider and HTTP status.",
                                      labels=["provider", "code"])
        for field_name, count in sorted(answers.items()):
            provider, _, code = field_name.rpartition("|")
            counter.add_metric([provider, code], count)
        yield counter
        cumulative, buckets = 0.0, []
        for bound in (*LATENCY_BUCKETS, math.inf):
            cumulative += latency.get("+Inf" if bound == math.inf else str(bound), 0.0)
            buckets.append(("+Inf" if bound == math.inf else str(bound), cumulative))
        yield HistogramMetricFamily(
            "jauge_event_latency_seconds", "Time from a payment event's arrival to its application.",
            buckets=buckets, sum_value=latency.get("sum", 0.0),
        )


def metrics_render() -> bytes:
    # prometheus_client is imported here, not at the top: the webhook path imports this module
    # to count its answers and must not pay 0.1-0.2 s more on each web process's first request.
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(JaugeCollector())
    return generate_latest(registry)
