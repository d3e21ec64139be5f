import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

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
