import logging
import os
import signal
import threading
import time

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, task_postrun, task_prerun, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger("campaigns.worker")

# Every task waits for the commit and never blocks on the broker (campaigns/queue.py).
app = Celery("jauge", task_cls="campaigns.queue:AfterCommitTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_format(logger=None, **kwargs) -> None:
    """The worker installs its own stderr handlers: with LOG_FORMAT=json they write JSON lines too."""
    from django.conf import settings

    if settings.LOG_FORMAT != "json":
        return
    from pythonjsonlogger.json import JsonFormatter

    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        ))


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
