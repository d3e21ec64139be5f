"""Health endpoints for operators and orchestrators.

- /healthz: 200 when the database and the broker answer, 503 otherwise (the public contract);
  the body also says whether webhooks are being stored (`storing`): with the broker down they
  still are, and the sweeper sends them on when it is back ("degraded but storing").
- /healthz/live: the process serves (no database, no broker): restart it when this fails.
- /healthz/ready: the database answers and a worker's heartbeat is fresh: money is stored *and*
  applied. 503 otherwise.
"""

from __future__ import annotations

from celery import current_app
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from campaigns.services import heartbeat


def _database_ok() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"
    return "ok"


def _broker_ok() -> str:
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"
    return "ok"


def _workers() -> tuple[str, float | None]:
    """("ok" | "stale" | "none" | "unknown", seconds since the freshest worker heartbeat)."""
    try:
        age = heartbeat.freshest_worker_age()
    except Exception:
        return "unknown", None
    if age is None:
        return "none", None
    return ("ok" if age <= settings.HEARTBEAT_MAX_AGE_SECONDS else "stale"), round(age, 1)


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "error", **checks, "storing": checks["database"] == "ok"}
    return JsonResponse(body, status=200 if healthy else 503)


@require_safe
@never_cache
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_safe
@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    database = _database_ok()
    workers, age = _workers() if database == "ok" else ("unknown", None)
    healthy = database == "ok" and workers == "ok"
    body = {"status": "ok" if healthy else "error", "database": database, "workers": workers,
            "worker_heartbeat_age_seconds": age}
    return JsonResponse(body, status=200 if healthy else 503)
