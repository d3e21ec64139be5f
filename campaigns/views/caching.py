"""HTTP caching for the public read paths (progress, embeds): shared caches absorb the polls."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from django.http import HttpRequest, HttpResponse

DEFAULT_MAX_AGE = 5
DEFAULT_STALE = 30


def etag_matches(request: HttpRequest, etag: str) -> bool:
    # From META directly: request.headers would first copy every header of the request.
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    if header == etag:  # the common case: a browser or a CDN sends back our one ETag
        return True
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag in candidates


class BodyMemo:
    """Response bodies kept per process. Keys hold the campaign's version (an ETag), so an entry
    never goes stale: a donation or an edit makes a new key. The bound only caps memory."""

    def __init__(self, limit: int):
        self.limit = limit
        self._bodies: dict[Hashable, bytes] = {}

    def get(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        body = self._bodies.get(key)
        if body is None:
            if len(self._bodies) >= self.limit:
                self._bodies.clear()
            body = self._bodies[key] = make()
        return body


def public_cache_headers(
    response: HttpResponse, *, max_age: int = DEFAULT_MAX_AGE, stale: int = DEFAULT_STALE
) -> HttpResponse:
    response["Cache-Control"] = (
        f"public, max-age={max_age}, s-maxage={max_age}, stale-while-revalidate={stale}"
    )
    return response


def keep_private(response: HttpResponse) -> HttpResponse:
    """A page whose URL is its key (a signed link: Mes dons, a tax receipt): never indexed, never
    sent to another site as a Referer. (`no-referrer` would also make the browser send
    `Origin: null` with the page's forms, which Django's CSRF check rightly refuses.)"""
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response
