"""Exit 0 when a worker's heartbeat is fresh, 1 when it is stale or missing, 2 when the database
cannot be asked. The worker containers' health check: `worker_health --hostname celery@$HOSTNAME`;
beat's: `worker_health --beat` (a heartbeat task beat sent ran recently)."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from campaigns.services import heartbeat


class Command(BaseCommand):
    help = "Check that a worker (or, without --hostname, any worker) consumed a task recently."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--hostname", help="the worker's node name, e.g. celery@$HOSTNAME (default: any worker)")
        parser.add_argument("--beat", action="store_true", help="check beat's heartbeat instead of a worker's")
        parser.add_argument("--max-age", type=int, default=None,
                            help="seconds (default: HEARTBEAT_MAX_AGE_SECONDS)")

    def handle(self, *args, hostname: str | None = None, beat: bool = False, max_age: int | None = None,
               **options) -> None:
        limit = max_age if max_age is not None else settings.HEARTBEAT_MAX_AGE_SECONDS
        try:
            if beat:
                age = heartbeat.heartbeat_age(key=heartbeat.BEAT)
            elif hostname:
                age = heartbeat.heartbeat_age(key=heartbeat.WORKER_PREFIX + hostname)
            else:
                age = heartbeat.freshest_worker_age()
        except Exception as exc:
            self.stderr.write(f"database unavailable: {exc.__class__.__name__}: {exc}")
            sys.exit(2)
        who = "beat" if beat else hostname or "any worker"
        if age is None:
            self.stderr.write(f"STALE: no heartbeat from {who} yet")
            sys.exit(1)
        if age > limit:
            self.stderr.write(f"STALE: last heartbeat from {who} {age:.0f} s ago (limit {limit} s)")
            sys.exit(1)
        self.stdout.write(f"OK: last heartbeat from {who} {age:.1f} s ago")
