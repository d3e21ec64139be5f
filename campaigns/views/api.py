"""Public read API: progress.json (O(1): one cached snapshot, conditional GET)."""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from campaigns import selectors
from campaigns.views.caching import etag_matches, public_cache_headers

# Serialized bodies by ETag: an ETag names one version of one campaign, so its JSON never changes.
_bodies: dict[str, bytes] = {}
_BODIES_MAX = 1000


def _progress_body(snapshot: dict) -> bytes:
    body = _bodies.get(snapshot["etag"])
    if body is None:
        if len(_bodies) >= _BODIES_MAX:
            _bodies.clear()
        body = _bodies[snapshot["etag"]] = json.dumps(selectors.progress_public(snapshot)).encode()
    return body


@require_GET
def progress_json(request: HttpRequest, slug: str) -> HttpResponse:
    snapshot = selectors.campaign_progress(slug=slug)
    if snapshot is None:
        if slug == selectors.CURRENT_SLUG:
            response: HttpResponse = JsonResponse({"status": "none"})
            return public_cache_headers(response, max_age=30)
        raise Http404("unknown campaign")
    if etag_matches(request, snapshot["etag"]):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(_progress_body(snapshot), content_type="application/json")
    response["ETag"] = snapshot["etag"]
    response["Access-Control-Allow-Origin"] = "*"
    return public_cache_headers(response)
