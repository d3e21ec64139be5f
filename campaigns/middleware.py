"""Middleware tweaks for the public, shared-cacheable read paths."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware


class LocaleMiddleware(DjangoLocaleMiddleware):
    """Django's LocaleMiddleware, except on responses whose language comes from the URL.

    Django adds `Vary: Accept-Language` to every response. An embed's language is chosen by
    `?lang=` or by its campaign, never by the reader's browser; varying on Accept-Language would
    split every shared cache (CDN, Varnish) into one copy per browser language for nothing.
    A view opts out with `response.vary_on_accept_language = False` (and sets Content-Language).
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if getattr(response, "vary_on_accept_language", True) is False:
            return response
        return super().process_response(request, response)
