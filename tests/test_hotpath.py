"""The hot path (config/hotpath.py): the public reads skip most middleware and answer the same headers."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from campaigns.models import Campaign
from campaigns.services import ledger
from campaigns.views.embed import preview_token
from config.hotpath import HotPathDispatcher, HotPathHandler, is_hot
from config.wsgi import application

pytestmark = pytest.mark.django_db

ORIGIN = "https://www.journal.example"
SLUG = "test-campaign"
HOT = [
    f"/embed/{SLUG}/",
    f"/embed/{SLUG}/?variant=compact&lang=en",
    f"/embed/{SLUG}/frame/",
    f"/embed/{SLUG}.js",
    f"/embed/{SLUG}.svg",
    f"/api/campaigns/{SLUG}/progress.json",
    "/embed/current/",
    "/api/campaigns/current/progress.json",
]


@pytest.fixture
def live(campaign: Campaign, django_capture_on_commit_callbacks) -> Campaign:
    campaign.allowed_origins = ORIGIN
    campaign.save()
    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(campaign=campaign, source="generic", external_id="hot-1", amount_minor=2500,
                               donor_email="hot@example.org")
    return campaign


def _headers(handler: WSGIHandler, path: str, **meta: str) -> tuple[int, dict[str, str], list[str]]:
    response = handler.get_response(RequestFactory().get(path, **meta))
    return response.status_code, dict(response.items()), sorted(response.cookies)


def _both(path: str, **meta: str):
    return _headers(WSGIHandler(), path, **meta), _headers(HotPathHandler(), path, **meta)


@pytest.mark.parametrize("path", HOT)
def test_hot_paths_answer_the_same_headers_without_the_skipped_middleware(live, path):
    # Another language and an Origin: the full chain's locale middleware would act on the first.
    meta = {"HTTP_ORIGIN": ORIGIN, "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9"}
    full, lean = _both(path, **meta)
    assert full[0] == 200
    assert lean == full
    _status, headers, cookies = lean
    assert cookies == []
    assert "Accept-Language" not in headers.get("Vary", "")
    assert headers["ETag"] and headers["Cache-Control"].startswith("public")
    if "/frame/" in path:
        assert headers["Content-Security-Policy"] == f"frame-ancestors 'self' {ORIGIN}"
    # ...and answer a conditional poll with the same 304.
    full_304, lean_304 = _both(path, HTTP_IF_NONE_MATCH=headers["ETag"], **meta)
    assert full_304[0] == 304
    assert lean_304 == full_304


@pytest.mark.parametrize("path", HOT)
def test_a_reader_with_cookies_gets_the_cookieless_answer(live, path):
    """The full chain answers a stale session cookie with `Vary: Cookie` and a Set-Cookie that deletes
    it, which no shared cache may store; the hot path ignores cookies."""
    meta = {"HTTP_ORIGIN": ORIGIN}
    _status, plain, _ = _headers(HotPathHandler(), path, **meta)
    status, with_cookies, cookies = _headers(HotPathHandler(), path, HTTP_COOKIE="sessionid=old; csrftoken=x",
                                             **meta)
    assert status == 200
    assert with_cookies == plain
    assert cookies == []
    assert "Cookie" not in with_cookies.get("Vary", "")


@pytest.mark.parametrize("path", [
    "/embed/nope/", "/embed/nope/frame/", "/embed/nope.svg", "/embed/nope.js",
    "/api/campaigns/nope/progress.json", f"/embed/{SLUG}/?variant=huge", f"/embed/{SLUG}.svg?lang=xx",
])
def test_hot_path_errors_answer_the_same_headers(live, path):
    full, lean = _both(path, HTTP_ACCEPT_LANGUAGE="en")
    assert full[0] in (400, 404)
    assert lean == full


def test_preflight_answers_the_same_headers(live):
    meta = {"HTTP_ORIGIN": ORIGIN, "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET"}
    full = WSGIHandler().get_response(RequestFactory().options(f"/embed/{SLUG}/", **meta))
    lean = HotPathHandler().get_response(RequestFactory().options(f"/embed/{SLUG}/", **meta))
    assert full.status_code == lean.status_code == 204
    assert dict(lean.items()) == dict(full.items())


def test_the_hot_chain_is_the_full_chain_minus_the_skipped_middleware():
    kept = [path for path in settings.MIDDLEWARE if path not in settings.HOT_PATH_SKIPPED_MIDDLEWARE]
    assert kept == settings.HOT_PATH_MIDDLEWARE
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in settings.HOT_PATH_MIDDLEWARE
    assert "django.middleware.security.SecurityMiddleware" in settings.HOT_PATH_MIDDLEWARE
    assert "django.middleware.common.CommonMiddleware" in settings.HOT_PATH_MIDDLEWARE  # ALLOWED_HOSTS


def test_only_the_public_reads_take_the_hot_path():
    for path in ("/embed/x/", "/embed/x/frame/", "/embed/x.js", "/embed/x.svg", "/api/campaigns/x/progress.json"):
        assert is_hot(path), path
    for path in ("/c/x/", "/c/x/donate/", "/admin/", "/dashboard/x/events/", "/hooks/generic/", "/healthz",
                 "/embed/x/frame/extra/", "/api/campaigns/x/other.json", "/embed/"):
        assert not is_hot(path), path


def test_the_wsgi_application_serves_hot_and_other_paths(live):
    serve = _Caller(application)

    def call(path: str, host: str = "testserver") -> tuple[str, dict[str, str]]:
        status, headers, _body = serve(path, HTTP_HOST=host)
        return status, dict(headers)

    status, headers = call(f"/embed/{SLUG}/")
    assert status == "200 OK" and "Set-Cookie" not in headers
    status, _ = call(f"/c/{SLUG}/")
    assert status == "200 OK"
    # Host validation (ALLOWED_HOSTS) still runs on the hot path.
    status, _ = call(f"/embed/{SLUG}/", host="evil.example")
    assert status.startswith("400")


class _Caller:
    """Calls a WSGI application as a server would; the request signals leave the test's transaction be."""

    def __init__(self, application):
        self.application = application

    def __call__(self, path: str, **meta: str) -> tuple[str, list[tuple[str, str]], bytes]:
        captured = {}
        environ = RequestFactory().get(path, **meta).environ
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = self.application(environ, lambda status, headers, exc_info=None: captured.update(
                status=status, headers=headers))
            body = b"".join(response)
            if hasattr(response, "close"):
                response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return captured["status"], captured["headers"], body


def test_a_process_replays_its_answer_to_an_identical_poll_for_a_moment(live, django_capture_on_commit_callbacks):
    call = _Caller(HotPathDispatcher(full=WSGIHandler(), lean=HotPathHandler(), memo_seconds=0.5))
    url = f"/embed/{SLUG}/?lang=en"
    first = call(url, HTTP_ORIGIN=ORIGIN)
    assert first[0] == "200 OK"
    etag = dict(first[1])["ETag"]
    poll = call(url, HTTP_ORIGIN=ORIGIN, HTTP_IF_NONE_MATCH=etag)
    assert poll[0] == "304 Not Modified"
    with django_capture_on_commit_callbacks(execute=True):
        ledger.donation_record(campaign=live, source="generic", external_id="hot-2", amount_minor=1000,
                               donor_email="hot2@example.org")
    # Within the moment: the very same answers, headers and body, byte for byte.
    assert call(url, HTTP_ORIGIN=ORIGIN) == first
    assert call(url, HTTP_ORIGIN=ORIGIN, HTTP_IF_NONE_MATCH=etag) == poll
    # Another origin is another request: its own answer (and its own CORS header).
    other = call(url, HTTP_ORIGIN="https://other.example")
    assert "Access-Control-Allow-Origin" not in dict(other[1])
    time.sleep(0.6)
    # After it, the new total.
    status, headers, body = call(url, HTTP_ORIGIN=ORIGIN, HTTP_IF_NONE_MATCH=etag)
    assert status == "200 OK" and dict(headers)["ETag"] != etag
    assert "35.00" in body.decode()


def test_private_answers_and_other_paths_are_never_replayed(live):
    call = _Caller(HotPathDispatcher(full=WSGIHandler(), lean=HotPathHandler(), memo_seconds=60))
    preview = f"/embed/{SLUG}/frame/?preview={preview_token(SLUG)}"
    call(preview)
    call(f"/c/{SLUG}/")
    call("/embed/nope/")
    assert call.application._memo == {}
