"""HTTP caching for the public read paths (progress, embeds): shared caches absorb the polls."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

DEFAULT_MAX_AGE = 5
DEFAULT_STALE = 30


def etag_matches(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    if not header:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag in candidates


def public_cache_headers(
    response: HttpResponse, *, max_age: int = DEFAULT_MAX_AGE, stale: int = DEFAULT_STALE
) -> HttpResponse:
    response["Cache-Control"] = (
        f"public, max-age={max_age}, s-maxage={max_age}, stale-while-revalidate={stale}"
    )
    return response
