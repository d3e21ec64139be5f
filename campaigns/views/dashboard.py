"""The editors' live dashboard: a page, its live fragment (htmx), and an SSE stream of the
progress snapshots services/progress.py publishes on Redis after each commit."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from functools import wraps

import redis
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from campaigns import money
from campaigns.models import Campaign, CampaignTotal
from campaigns.progress_cache import PROGRESS_CHANNEL
from campaigns.selectors.dashboard import dashboard_data

# Polling period when SSE is unavailable (no Redis), and the safety net beside SSE.
POLL_SECONDS = 15
# An SSE stream ends after this long (setting DASHBOARD_SSE_MAX_SECONDS) and the browser
# reconnects: a web worker is never held forever.
SSE_MAX_SECONDS = 120
SSE_KEEPALIVE_SECONDS = 15


def dashboard_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff only (anonymous → admin login), and the view_dashboard permission (else 403)."""

    @staff_member_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.has_perm("campaigns.view_dashboard"):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _context(request: HttpRequest, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


@require_GET
@dashboard_access
@never_cache
def dashboard_index(request: HttpRequest) -> HttpResponse:
    rows = []
    for campaign in Campaign.objects.select_related("totals").order_by("-starts_at"):
        total: CampaignTotal | None = getattr(campaign, "totals", None)
        total_minor = total.total_minor if total else 0
        rows.append({
            "campaign": campaign,
            "total": money.format_money(total_minor, campaign.currency, request.LANGUAGE_CODE[:2]),
            "goal": money.format_money(campaign.goal_minor, campaign.currency, request.LANGUAGE_CODE[:2]),
            "percent": money.percent(total_minor, campaign.goal_minor),
        })
    return render(request, "dashboard/index.html", _context(request, rows=rows, title="Tableau de bord"))


@require_GET
@dashboard_access
@never_cache
def dashboard_campaign(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, slug=slug)
    data = dashboard_data(campaign_id=campaign.pk)
    return render(
        request,
        "dashboard/campaign.html",
        _context(request, d=data, title=campaign.title, sse=bool(settings.REDIS_URL), poll_seconds=POLL_SECONDS),
    )


@require_GET
@dashboard_access
@never_cache
@vary_on_headers("HX-Request")
def dashboard_live(request: HttpRequest, slug: str) -> HttpResponse:
    """The live part alone (htmx swaps it in on every SSE message or poll)."""
    campaign = get_object_or_404(Campaign, slug=slug)
    return render(request, "dashboard/_live.html", {"d": dashboard_data(campaign_id=campaign.pk)})


def _sse_stream(slug: str) -> Iterator[str]:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=None)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(f"{PROGRESS_CHANNEL}:{slug}")
        # Wait for Redis to confirm: a change published before that would be missed.
        confirmed = pubsub.get_message(timeout=5)
        if confirmed is None or confirmed["type"] != "subscribe":
            raise ConnectionError(f"Redis did not confirm the subscription: {confirmed!r}")
        yield "retry: 3000\n\n"
        deadline = time.monotonic() + getattr(settings, "DASHBOARD_SSE_MAX_SECONDS", SSE_MAX_SECONDS)
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=SSE_KEEPALIVE_SECONDS)
            if message is None or message["type"] != "message":
                yield ": keepalive\n\n"
                continue
            data = message["data"].decode() if isinstance(message["data"], bytes) else str(message["data"])
            yield f"event: progress\ndata: {json.dumps(json.loads(data))}\n\n"
    finally:
        pubsub.close()
        client.close()


@require_GET
@dashboard_access
def dashboard_events(request: HttpRequest, slug: str) -> HttpResponse:
    """Server-sent events: one `progress` event per committed change of this campaign."""
    campaign = get_object_or_404(Campaign, slug=slug)
    if not settings.REDIS_URL:
        return HttpResponse(status=204)  # no pub/sub: the page polls instead
    # The stream needs no database: give the connection back before holding the request open.
    close_old_connections()
    connection.close()
    response = StreamingHttpResponse(_sse_stream(campaign.slug), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response
