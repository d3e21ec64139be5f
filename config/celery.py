import logging
import os
import signal
import threading
import time

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_ready
from celery.worker.consumer import Consumer as CeleryConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger("campaigns.worker")

app = Celery("jauge")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    """Tasks get the connection lifecycle Django gives a request.

    Celery's Django fixup closes the database connection around every task unless
    CELERY_DB_REUSE_MAX is set (see settings): a new PostgreSQL backend per webhook cost more
    than applying the webhook. Instead, as around a web request, a connection that saw an error
    or outlived CONN_MAX_AGE is dropped, and CONN_HEALTH_CHECKS tests it before it is reused.
    """
    if getattr(sender.request, "is_eager", False):
        return  # run inline by the caller (tests): its connection and transaction are its own
    from django.db import close_old_connections

    close_old_connections()


@task_postrun.connect
def _worker_heartbeat(sender=None, **kwargs) -> None:
    """A worker that runs tasks is alive: refresh its heartbeat (at most twice per
    HEARTBEAT_SECONDS per process), so a busy worker never looks stale while idle peers take
    beat's heartbeat tasks."""
    request = getattr(sender, "request", None)
    if request is None or getattr(request, "is_eager", False) or not request.hostname:
        return
    from django.conf import settings

    from campaigns.services import heartbeat

    try:
        heartbeat.worker_heartbeat_record(hostname=request.hostname, throttle_seconds=settings.HEARTBEAT_SECONDS / 2)
    except Exception as exc:  # the database is down: the heartbeat goes stale, as it should
        logger.warning("could not record the worker heartbeat: %r", exc)


@worker_ready.connect
def _start_watchdog(sender=None, **kwargs) -> None:
    """Replace a worker that stopped consuming: past WORKER_STALE_EXIT_SECONDS without running a
    task while there is work for it (see heartbeat.worker_stuck_reason), it shuts itself down and
    the supervisor (compose's restart policy, systemd) starts a fresh one. 0 turns this off."""
    from django.conf import settings

    limit = settings.WORKER_STALE_EXIT_SECONDS
    if not limit or sender is None:
        return
    hostname = sender.hostname
    thread = threading.Thread(target=_watch, args=(hostname, limit), name="jauge-watchdog", daemon=True)
    thread.start()


def _watch(hostname: str, limit: int) -> None:
    from django.conf import settings
    from django.db import close_old_connections
    from django.utils import timezone

    from campaigns.services import heartbeat

    started_at = timezone.now()
    while True:
        time.sleep(min(settings.HEARTBEAT_SECONDS, limit))
        try:
            reason = heartbeat.worker_stuck_reason(hostname=hostname, started_at=started_at, limit_seconds=limit)
        except Exception as exc:  # database down: not this worker's fault, nothing to replace
            logger.warning("watchdog: cannot check the heartbeat: %r", exc)
            reason = None
        finally:
            close_old_connections()
        if reason:
            logger.critical("watchdog: worker %s stopped consuming (%s): exiting to be replaced", hostname, reason)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)  # a warm shutdown that hangs is what a stuck worker does: end it
            os._exit(1)
