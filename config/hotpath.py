"""The hot path: public, cookie-free reads (embeds, progress.json) through a shorter middleware chain.

Every article view of a publication polls the banner; those requests never need a session, a user,
messages, a CSRF token, htmx's request attributes or the browser's language (each view picks its
language from the URL or the campaign and says so in `Content-Language`). Django builds one
middleware chain per handler, so `config.wsgi` keeps two handlers and sends each request to one
by its path: the full chain (settings.MIDDLEWARE) for everything else, and this one
(settings.HOT_PATH_MIDDLEWARE: MIDDLEWARE minus HOT_PATH_SKIPPED_MIDDLEWARE) for the hot paths.
The response headers are the same either way (tests/test_hotpath.py compares them).
"""

from __future__ import annotations

import re
import time

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.utils.module_loading import import_string

# /embed/<slug>/, /embed/<slug>/frame/, /embed/<slug>.js, /embed/<slug>.svg and progress.json.
HOT_PATH = re.compile(r"^/(?:embed/[^/]+(?:/|/frame/|\.js|\.svg)|api/campaigns/[^/]+/progress\.json)$")


def is_hot(path: str) -> bool:
    return HOT_PATH.match(path) is not None


class HotPathHandler(WSGIHandler):
    """A WSGI handler whose chain is settings.HOT_PATH_MIDDLEWARE.

    BaseHandler.load_middleware always reads settings.MIDDLEWARE, so the (synchronous) chain is
    built here the same way: each middleware wraps the next, its process_view / process_exception /
    process_template_response hooks are collected for this handler alone.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(settings.HOT_PATH_MIDDLEWARE):
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view"):
                self._view_middleware.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self._template_response_middleware.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler


class HotPathDispatcher:
    """WSGI application: hot paths to the lean handler, the rest to the full one.

    On the hot paths each process also replays its own answer to an identical request (same method,
    path, query, host, scheme, Origin and If-None-Match) for `memo_seconds` (PROGRESS_LOCAL_SECONDS,
    the age its progress snapshots may have already; so a change shows in a process within twice
    that): every reader of a campaign polls the same URL with the same ETag, so most polls cost a
    dict lookup. Only public answers without cookies are replayed, byte for byte, headers included.
    """

    MEMO_LIMIT = 4096

    def __init__(self, full: WSGIHandler, lean: WSGIHandler, *, memo_seconds: float = 0):
        self.full = full
        self.lean = lean
        self.memo_seconds = memo_seconds
        self._memo: dict[tuple, tuple[float, str, list[tuple[str, str]], bytes]] = {}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not is_hot(path):
            return self.full(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        if self.memo_seconds <= 0 or method not in ("GET", "HEAD"):
            return self.lean(environ, start_response)
        # Everything a hot view or its middleware reads from the request (the scheme: HSTS, if enabled).
        key = (method, path, environ.get("QUERY_STRING", ""), environ.get("HTTP_HOST"), environ.get("wsgi.url_scheme"),
               environ.get("HTTP_X_FORWARDED_PROTO"), environ.get("HTTP_ORIGIN"), environ.get("HTTP_IF_NONE_MATCH"))
        now = time.monotonic()
        entry = self._memo.get(key)
        if entry is not None and entry[0] > now:
            start_response(entry[1], entry[2])
            return [entry[3]]
        answer: list = []

        def capture(status, headers, exc_info=None):
            answer[:] = [status, headers]
            return start_response(status, headers) if exc_info is None else start_response(status, headers, exc_info)

        response = self.lean(environ, capture)
        try:
            body = b"".join(response)  # small, never streamed on these paths
        finally:
            response.close()
        status, headers = answer
        if status[:3] in ("200", "304") and _replayable(headers):
            if len(self._memo) >= self.MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = (now + self.memo_seconds, status, headers, body)
        return [body]


def _replayable(headers: list[tuple[str, str]]) -> bool:
    names = {name.lower(): value for name, value in headers}
    return names.get("cache-control", "").startswith("public") and "set-cookie" not in names
