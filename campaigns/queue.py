"""The one way to send work to the workers: after the commit, never blocking, never raising.

pretix's `TransactionAwareTask` is the model. Inside a transaction a task is sent once the
transaction commits (a worker must never read before the commit, and a rollback sends nothing);
outside one it is sent at once. With the broker down the send fails fast, is logged, and the
work stays in the database for the sweeper (Celery is a trigger, not the source of truth).

Every task's base is `AfterCommitTask` (config/celery.py). Services send tasks by name
(`send("process_payment_event", event_id)`), looked up in Celery's registry (campaigns.apps
imports the tasks in every process): they never import `campaigns.tasks`, which imports them.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_app
from django.db import transaction

logger = logging.getLogger(__name__)

TASKS_MODULE = "campaigns.tasks"


def _after_commit(name: str, publish):
    """`publish()` now (its result: Celery's AsyncResult, which beat logs) or after the commit."""

    def send():
        try:
            return publish()
        except Exception as exc:
            logger.warning("broker unavailable, %s left for the sweeper: %s", name, exc)
            return None

    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(send)
        return None
    return send()


def send(name: str, *args: Any, **options: Any) -> None:
    """Send `campaigns.tasks.<name>(*args)` after the current transaction commits (at once outside
    one). `options` are Celery's (countdown, priority). Never blocks on nor raises for the broker."""
    current_app.tasks[f"{TASKS_MODULE}.{name}"].apply_async(args=args, **options)


class AfterCommitTask(Task):
    """The base of every Jauge task: `apply_async` (and `delay`) wait for the commit and never block."""

    abstract = True

    def apply_async(self, args=None, kwargs=None, **options):
        options.setdefault("retry", False)
        return _after_commit(f"{self.name}{tuple(args or ())!r}", lambda: super(AfterCommitTask, self).apply_async(
            args, kwargs, **options
        ))
