"""The live progress banner on other sites: fragment, frame, loader script and SVG.

The hottest path of Jauge (every article view of a publication, then a poll every few seconds).
Per request: one cache read for the campaign's snapshot (no database on a hit), an ETag built
from its version, a 304 before anything is rendered, and otherwise a body rendered once per
process per (version, variant, language) and reused. No session, no cookie, no Vary: Cookie.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils import timezone, translation
from django.utils.text import Truncator
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_http_methods

from campaigns.models import Campaign, allowed_origins, days_between
from campaigns.providers.sandbox import test_mode_shown
from campaigns.selectors import progress as selectors
from campaigns.templatetags.jauge import (
    appeal_html,
    banner_style,
    banner_theme,
    match_live,
    progress_context,
    progress_state,
)
from campaigns.views.caching import BodyMemo, etag_matches, public_cache_headers
from campaigns.views.language import LANGUAGES

# `thanks`: what a reader who has just given sees instead of the ask (the loader asks for it
# while the thank-you marker is in the publication's localStorage); cached like the others.
VARIANTS = ("banner", "bar", "compact", "thanks")
# Polling when there is nothing to show (`current` between campaigns, a draft): slow, so a
# campaign that starts appears within a minute without costing much.
IDLE_POLL_SECONDS = 60
STALE_SECONDS = 30
LOADER_MAX_AGE = 3600
LOADER_SHARED_MAX_AGE = 86400
# Bump when the markup changes, so ETags issued by the previous release stop matching.
MARKUP_VERSION = "5"
HTMX_HEADERS = (
    "HX-Request, HX-Current-URL, HX-Target, HX-Trigger, HX-Trigger-Name, HX-Boosted, "
    "HX-History-Restore-Request, HX-Prompt"
)
_STATIC_DIR = Path(settings.BASE_DIR) / "static" / "embed"

# Rendered bodies, per process, keyed by ETag (see BodyMemo).
_rendered = BodyMemo(limit=2048)


class BadOption(ValueError):
    pass


def _query(request: HttpRequest) -> dict[str, str]:
    # parse_qsl on the raw query string: a quarter of the cost of building request.GET.
    raw = request.META.get("QUERY_STRING", "")
    return dict(parse_qsl(raw)) if raw else {}


def _options(request: HttpRequest, snapshot: dict[str, Any] | None) -> tuple[str, str]:
    query = _query(request)
    variant = query.get("variant") or "banner"
    if variant not in VARIANTS:
        raise BadOption(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    lang = query.get("lang") or (snapshot["locale"] if snapshot else settings.LANGUAGE_CODE)
    if lang not in LANGUAGES:
        raise BadOption(f"unknown lang {lang!r}: use one of {', '.join(LANGUAGES)}")
    return variant, lang


def _allowed_origins(snapshot: dict[str, Any] | None) -> list[str]:
    return allowed_origins(snapshot.get("origins", []) if snapshot else [])


def _state(snapshot: dict[str, Any] | None, now: datetime) -> tuple[str, int]:
    """(`hidden`|`live`|`ended`, days left): both show in the markup, so both go in the ETag."""
    state = progress_state(snapshot, now)
    if state != "live":
        return state, 0
    return state, days_between(now, datetime.fromisoformat(snapshot["ends_at"]))


def _etag(snapshot: dict[str, Any] | None, kind: str, variant: str, lang: str, state: str, days: int) -> str:
    version = snapshot["etag"].strip('"') if snapshot else "none"
    test = "-test" if test_mode_shown() else ""
    # A match's window opens and closes without a new version: whether it shows is in the ETag.
    matching = "x" if snapshot and snapshot.get("match") and match_live(snapshot, timezone.now()) else ""
    return f'"{version}-{kind}-{variant}-{lang}-{state}{days}{matching}-m{MARKUP_VERSION}{test}"'


def _poll_seconds(snapshot: dict[str, Any] | None, state: str) -> int:
    if state != "live" or snapshot is None:
        return IDLE_POLL_SECONDS
    return max(2, int(snapshot.get("poll_interval_seconds") or 10))


def _public(response: HttpResponse, *, etag: str, lang: str, max_age: int) -> HttpResponse:
    response["ETag"] = etag
    response["Content-Language"] = lang
    # The language comes from the URL or the campaign, not the browser (see campaigns.middleware).
    response.vary_on_accept_language = False
    return public_cache_headers(response, max_age=max_age, stale=STALE_SECONDS)


def _cors(request: HttpRequest, response: HttpResponse, origins: list[str]) -> HttpResponse:
    # Always Vary: Origin, so a shared cache never hands one origin's answer to another.
    response["Vary"] = "Origin"
    origin = request.META.get("HTTP_ORIGIN")
    if origin and ("*" in origins or origin in origins):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = "ETag"
    return response


def _lookup(slug: str) -> tuple[dict[str, Any] | None, bool]:
    """(snapshot, found). `current` with no live campaign is found and empty."""
    snapshot = selectors.campaign_progress(slug=slug)
    if snapshot is None:
        return None, slug == selectors.CURRENT_SLUG
    return snapshot, True


def _plain(text: str, status: int) -> HttpResponse:
    response = HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    # Always English, whatever the browser asks: no Vary: Accept-Language to split shared caches.
    response.vary_on_accept_language = False
    return response


def _not_found() -> HttpResponse:
    return _plain("unknown campaign\n", 404)


def _bad_request(error: BadOption) -> HttpResponse:
    return _plain(f"{error}\n", 400)


def _banner_context(
    host: str, slug: str, snapshot: dict[str, Any] | None, *, kind: str, variant: str, lang: str,
    state: str, poll: int,
) -> dict[str, Any]:
    # Scheme-relative URLs: the fragment lands in an article page and follows its http/https.
    base = f"//{host}"
    own_url = f"{base}/embed/{slug}/" + ("frame/" if kind == "frame" else "")
    context: dict[str, Any] = {
        "state": state,
        "variant": variant,
        "lang": lang,
        "poll": poll,
        "poll_url": f"{own_url}?variant={variant}&lang={lang}",
        # The frame polls itself and keeps only the banner (hx-select).
        "poll_select": kind == "frame",
        "target": "_top" if kind == "frame" else "",
        "htmx_attribution": kind == "fragment",
        "test_mode": test_mode_shown(),
    }
    if snapshot is not None and state != "hidden":
        theme = banner_theme(snapshot)
        progress = progress_context(snapshot, lang)
        context.update(
            progress=progress,
            theme=theme,
            style=banner_style(theme),
            appeal=appeal_html(progress["appeal"]),
            # A reader of the English banner lands on the English donation page.
            give_url=f"{base}/c/{snapshot['slug']}/" + ("" if lang == snapshot.get("locale") else f"?lang={lang}"),
        )
    return context


@lru_cache(maxsize=1)
def _css() -> str:
    return (_STATIC_DIR / "jauge-embed.css").read_text()


_PREVIEW_SALT = "jauge.embed.preview"
PREVIEW_MAX_AGE = 12 * 3600


def preview_token(slug: str) -> str:
    """A signed, expiring token that lets the admin's frame show a draft campaign's banner."""
    return signing.TimestampSigner(salt=_PREVIEW_SALT).sign(slug)


def _is_preview(request: HttpRequest, slug: str) -> bool:
    token = request.GET.get("preview")
    if not token:
        return False
    try:
        return signing.TimestampSigner(salt=_PREVIEW_SALT).unsign(token, max_age=PREVIEW_MAX_AGE) == slug
    except signing.BadSignature:
        return False


def _body(request: HttpRequest, slug: str, snapshot: dict[str, Any] | None, *, kind: str, variant: str, lang: str,
          state: str, poll: int, poll_query: str = "") -> str:
    # CommonMiddleware has validated the host already (ALLOWED_HOSTS).
    host = request.META.get("HTTP_HOST") or request.get_host()
    with translation.override(lang):
        context = _banner_context(host, slug, snapshot, kind=kind, variant=variant, lang=lang, state=state, poll=poll)
        context["poll_url"] += poll_query
        if kind == "frame":
            context.update(css=_css(), htmx_url=static("vendor/htmx.min.js"))
            return render_to_string("embed/frame.html", context)
        return render_to_string("embed/_banner.html", context)


def _render_banner(request: HttpRequest, slug: str, kind: str) -> tuple[HttpResponse, dict[str, Any] | None]:
    """(response, snapshot) for the fragment or the frame; errors come back as 400/404 responses."""
    snapshot, found = _lookup(slug)
    if not found:
        return _not_found(), None
    try:
        variant, lang = _options(request, snapshot)
    except BadOption as error:
        return _bad_request(error), snapshot
    state, days = _state(snapshot, timezone.now())
    poll = _poll_seconds(snapshot, state)
    etag = _etag(snapshot, kind, variant, lang, state, days)
    max_age = min(5, poll)
    if etag_matches(request, etag):
        return _public(HttpResponse(status=304), etag=etag, lang=lang, max_age=max_age), snapshot
    # Keyed by the requested slug too: /embed/current/ and /embed/<its slug>/ share an ETag, but
    # each body polls its own URL (`current` must keep following whichever campaign is current).
    host = request.META.get("HTTP_HOST") or request.get_host()
    body = _rendered.get((kind, etag, host, slug), lambda: _body(
        request, slug, snapshot, kind=kind, variant=variant, lang=lang, state=state, poll=poll).encode())
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    return _public(response, etag=etag, lang=lang, max_age=max_age), snapshot


def _render_preview(request: HttpRequest, slug: str, snapshot: dict[str, Any]) -> HttpResponse:
    """The admin's frame (a valid `?preview=` token): a draft drawn as it will look once live,
    for the editor only — private, never cached, and its polls stay previews."""
    if snapshot["status"] == Campaign.Status.DRAFT:
        snapshot = {**snapshot, "status": Campaign.Status.ACTIVE, "etag": snapshot["etag"].strip('"') + "-preview"}
    try:
        variant, lang = _options(request, snapshot)
    except BadOption as error:
        return _bad_request(error)
    state, days = _state(snapshot, timezone.now())
    poll = _poll_seconds(snapshot, state)
    body = _body(request, slug, snapshot, kind="frame", variant=variant, lang=lang, state=state, poll=poll,
                 poll_query=f"&preview={request.GET['preview']}")
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["ETag"] = _etag(snapshot, "frame", variant, lang, state, days)
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "HEAD", "OPTIONS"])
def banner(request: HttpRequest, slug: str) -> HttpResponse:
    """`/embed/<slug>/`: the banner as an HTML fragment, for hx-get from an article page."""
    if request.method == "OPTIONS":
        return _preflight(request, slug)
    response, snapshot = _render_banner(request, slug, "fragment")
    if response.status_code == 404:
        return response
    return _cors(request, response, _allowed_origins(snapshot))


def _preflight(request: HttpRequest, slug: str) -> HttpResponse:
    """htmx sends HX-* headers, so a cross-origin hx-get is preceded by this OPTIONS request."""
    snapshot, found = _lookup(slug)
    if not found:
        return _not_found()
    origins = _allowed_origins(snapshot)
    origin = request.headers.get("Origin")
    if not origin or not ("*" in origins or origin in origins):
        return _plain("origin not allowed to embed this campaign\n", 403)
    response = HttpResponse(status=204)
    response.vary_on_accept_language = False
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = "GET, HEAD"
    response["Access-Control-Allow-Headers"] = f"{HTMX_HEADERS}, If-None-Match"
    response["Access-Control-Max-Age"] = "86400"
    response["Vary"] = "Origin"
    return response


def _frame_ancestors(origins: list[str]) -> str:
    if "*" in origins:
        return "frame-ancestors *"
    return " ".join(["frame-ancestors 'self'", *origins])


@xframe_options_exempt
@require_http_methods(["GET", "HEAD"])
def frame(request: HttpRequest, slug: str) -> HttpResponse:
    """`/embed/<slug>/frame/`: the banner as a document for <iframe>, framable by allowed origins only."""
    snapshot = _lookup(slug)[0] if _is_preview(request, slug) else None
    if snapshot is not None:
        response = _render_preview(request, slug, snapshot)
    else:
        response, snapshot = _render_banner(request, slug, "frame")
    if response.status_code >= 400:
        response["X-Frame-Options"] = "DENY"
        return response
    response["Content-Security-Policy"] = _frame_ancestors(_allowed_origins(snapshot))
    return response


@lru_cache(maxsize=1)
def _loader() -> tuple[bytes, str]:
    source = (_STATIC_DIR / "loader.js").read_text()
    css = ":host{all:initial;display:block;contain:content}" + _css()
    body = source.replace('"__JAUGE_CSS__"', json.dumps(css)).encode()
    return body, f'"js-{hashlib.sha256(body).hexdigest()[:16]}"'


@require_http_methods(["GET", "HEAD"])
def loader(request: HttpRequest, slug: str) -> HttpResponse:
    """`/embed/<slug>.js`: the same script for every campaign, cacheable for long; the data is not."""
    _snapshot, found = _lookup(slug)
    if not found:
        return _not_found()
    body, etag = _loader()
    response = HttpResponse(status=304) if etag_matches(request, etag) else HttpResponse(
        body, content_type="text/javascript; charset=utf-8"
    )
    response["ETag"] = etag
    response.vary_on_accept_language = False
    response["Cache-Control"] = (
        f"public, max-age={LOADER_MAX_AGE}, s-maxage={LOADER_SHARED_MAX_AGE}, "
        f"stale-while-revalidate={LOADER_SHARED_MAX_AGE}"
    )
    # A <script> from another origin needs no CORS; this lets `crossorigin` users load it too.
    response["Access-Control-Allow-Origin"] = "*"
    return response


SVG_WIDTH = 600
SVG_TRACK = SVG_WIDTH - 32


def _svg_geometry(progress: dict[str, Any]) -> dict[str, Any]:
    fill = round(SVG_TRACK * float(progress["bar_percent"]) / 100, 1)
    pending = round(SVG_TRACK * float(progress["pending_bar_percent"]) / 100, 1)
    height = 120 if progress["has_pending"] else 100
    next_height = height + 20 if progress["next_display"] else height
    return {
        "width": SVG_WIDTH,
        # One more line for the next milestone, one more for a match.
        "height": next_height + 20 if progress["match_display"] else next_height,
        "next_y": height + 6,
        "match_y": next_height + 6,
        "next_label": Truncator(progress["next_label"]).chars(50),
        "track": SVG_TRACK,
        "fill": fill,
        "pending": pending,
        "pending_x": round(16 + fill, 1),
        "title": Truncator(progress["title"]).chars(60),
    }


@require_http_methods(["GET", "HEAD"])
def svg(request: HttpRequest, slug: str) -> HttpResponse:
    """`/embed/<slug>.svg`: the progress as an image for newsletters and RSS (no script runs there)."""
    snapshot, found = _lookup(slug)
    if not found:
        return _not_found()
    try:
        _variant, lang = _options(request, snapshot)
    except BadOption as error:
        return _bad_request(error)
    state, _days = _state(snapshot, timezone.now())
    etag = _etag(snapshot, "svg", "image", lang, state, 0)
    max_age = min(5, _poll_seconds(snapshot, state))
    if etag_matches(request, etag):
        return _public(HttpResponse(status=304), etag=etag, lang=lang, max_age=max_age)

    def render() -> str:
        context: dict[str, Any] = {"state": state, "lang": lang, "test_mode": test_mode_shown()}
        if snapshot is not None and state != "hidden":
            with translation.override(lang):
                progress = progress_context(snapshot, lang)
                context.update(progress=progress, theme=banner_theme(snapshot), svg=_svg_geometry(progress))
                return render_to_string("embed/progress.svg", context)
        return render_to_string("embed/progress.svg", context)

    body = _rendered.get(("svg", etag), lambda: render().encode())
    response = HttpResponse(body, content_type="image/svg+xml; charset=utf-8")
    # Opened directly, an SVG is a document: let it run nothing.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return _public(response, etag=etag, lang=lang, max_age=max_age)
