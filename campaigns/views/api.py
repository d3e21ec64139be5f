"""Public read API: progress.json (O(1): one cached snapshot, conditional GET)."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from campaigns.selectors import progress as selectors
from campaigns.views.caching import DEFAULT_MAX_AGE, BodyMemo, etag_matches, public_cache_headers

# `current` between campaigns: one fixed body, so one fixed ETag (a campaign starting changes both).
_NONE_BODY = b'{"status": "none"}'
_NONE_ETAG = '"none"'

# Serialized bodies by ETag: an ETag names one version of one campaign, so its JSON never changes.
_bodies = BodyMemo(limit=1000)


def _progress_body(snapshot: dict) -> bytes:
    return _bodies.get(snapshot["etag"], lambda: json.dumps(selectors.progress_public(snapshot)).encode())


def _public_json(request: HttpRequest, etag: str, body: Callable[[], bytes], *, max_age: int) -> HttpResponse:
    if etag_matches(request, etag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body(), content_type="application/json")
    response["ETag"] = etag
    response["Access-Control-Allow-Origin"] = "*"
    # The JSON is the same in every language: no Vary: Accept-Language to split shared caches.
    response.vary_on_accept_language = False
    return public_cache_headers(response, max_age=max_age)


@require_safe
def progress_json(request: HttpRequest, slug: str) -> HttpResponse:
    snapshot = selectors.campaign_progress(slug=slug)
    if snapshot is None and slug == selectors.CURRENT_SLUG:
        return _public_json(request, _NONE_ETAG, lambda: _NONE_BODY, max_age=30)
    # A draft's title, goal and dates are the newsroom's until it publishes them: as unknown.
    if snapshot is None or snapshot["status"] == "draft":
        response = HttpResponse("unknown campaign\n", status=404, content_type="text/plain; charset=utf-8")
        response.vary_on_accept_language = False
        return response
    return _public_json(request, snapshot["etag"], lambda: _progress_body(snapshot), max_age=DEFAULT_MAX_AGE)
