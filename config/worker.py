"""Worker-only pieces (imported by Celery workers through settings, never by web processes)."""

import logging

from celery.worker.consumer import Consumer as CeleryConsumer

logger = logging.getLogger("campaigns.worker")


class Consumer(CeleryConsumer):
    """Celery's consumer, kept alive through a broker restart (settings.CELERY_WORKER_CONSUMER).

    Reported with Celery 5.7.0 (a worker exiting on `Unrecoverable error: AttributeError("'NoneType'
    object has no attribute 'hostname'")` when Redis restarted). 5.7.0 added a `connection.close()`
    to `on_connection_error_after_connected`, after `connection.collect()` has already detached the
    kombu transport from its connection (`transport.client = None`); a Redis channel that then
    needs a new pool builds it from `transport.client.hostname`, and `ignore_errors()` only
    swallows connection and channel errors, so an AttributeError there escapes and the consumer
    calls it unrecoverable. No later Celery or kombu release exists to move to (5.7.0 is the
    newest of both); 5.6.3 has no such close. The broken connection is already dropped when this
    happens (`self.connection` is None), so carrying on to the reconnect loop is what 5.6 did.
    The crash did not reproduce on our machines (idle worker, tasks in flight, outages of 0-12 s,
    a silent broker, the chaos drill): this is a narrow guard, and tests/test_broker_restart.py
    is the check for upgrades.
    """

    def on_connection_error_after_connected(self, exc):
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as error:
            logger.warning("ignored while dropping the broken broker connection: %r", error)
            self.connection = None
