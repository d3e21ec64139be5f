"""Public read API: progress.json (O(1): one cached snapshot, conditional GET)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from campaigns import selectors
from campaigns.views.caching import etag_matches, public_cache_headers


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
        response = JsonResponse(selectors.progress_public(snapshot))
    response["ETag"] = snapshot["etag"]
    response["Access-Control-Allow-Origin"] = "*"
    return public_cache_headers(response)
