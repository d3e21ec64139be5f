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
    """WSGI application: hot paths to the lean handler, the rest to the full one."""

    def __init__(self, full: WSGIHandler, lean: WSGIHandler):
        self.full = full
        self.lean = lean

    def __call__(self, environ, start_response):
        handler = self.lean if is_hot(environ.get("PATH_INFO", "")) else self.full
        return handler(environ, start_response)
