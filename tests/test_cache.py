"""The shipped cache (deploy/nginx/jauge.conf) run by Debian's nginx, in front of a recording upstream
and in front of Jauge itself: hits, revalidation with If-None-Match, one request per expiry, cookies
stripped, the client address forwarded."""

from __future__ import annotations

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils.datastructures import CaseInsensitiveMapping

from bench.harness import Granian, Nginx, nginx_binary
from campaigns.services import ledger
from tests.live import request
from tests.worker import process_env

if nginx_binary() is None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        raise RuntimeError("nginx is required under REQUIRE_SERVICES=1 (apt-get install nginx-light)")
    pytest.skip("nginx is not installed (apt-get install nginx-light)", allow_module_level=True)

ETAG = '"v1"'


class Upstream(ThreadingHTTPServer):
    """A real HTTP server that answers like Jauge's public reads and records what nginx sent it."""

    daemon_threads = True

    def __init__(self):
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def requests(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [headers for seen_path, headers in self.seen if seen_path == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.seen.append((self.path, dict(self.headers)))
        if self.path.startswith("/embed/slow/"):
            time.sleep(0.5)
        public = self.path.startswith(("/embed/", "/api/"))
        max_age = 1 if self.path.startswith("/embed/short/") else 60
        if public and self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)
            self.send_header("ETag", ETAG)
            self.send_header("Cache-Control", f"public, max-age={max_age}, s-maxage={max_age}")
            self.end_headers()
            return
        body = b"<div>banner</div>" if public else b"<html>page</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if public:
            self.send_header("ETag", ETAG)
            self.send_header("Cache-Control", f"public, max-age={max_age}, s-maxage={max_age}, "
                                              "stale-while-revalidate=30")
            self.send_header("Vary", "Origin")
        self.send_header("Set-Cookie", "tracker=1; Path=/")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache(upstream):
    with Nginx(upstream.address) as nginx:
        yield nginx


def _get(url: str, **headers: str) -> tuple[int, CaseInsensitiveMapping, bytes]:
    # granian sends header names in lower case, nginx passes them on as they came.
    status, answer, body = request("GET", url, headers=headers)
    return status, CaseInsensitiveMapping(answer), body


def test_it_answers_repeated_polls_from_the_cache(upstream, cache):
    url = f"{cache.url}/embed/camp/?variant=bar"
    first = _get(url)
    assert first[0] == 200 and first[1]["X-Cache-Status"] == "MISS"
    for _ in range(5):
        status, headers, body = _get(url)
        assert (status, headers["X-Cache-Status"], body) == (200, "HIT", b"<div>banner</div>")
    assert len(upstream.requests("/embed/camp/?variant=bar")) == 1
    # A reader's conditional poll is answered 304 by nginx itself.
    status, headers, _ = _get(url, **{"If-None-Match": ETAG})
    assert (status, headers["ETag"]) == (304, ETAG)
    assert len(upstream.requests("/embed/camp/?variant=bar")) == 1


def test_it_revalidates_an_expired_entry_with_if_none_match(upstream, cache):
    url = f"{cache.url}/embed/short/"
    assert _get(url)[0] == 200
    time.sleep(2.5)  # s-maxage=1 has passed (nginx counts whole seconds: leave a margin)
    status, headers, body = _get(url)
    # Stale-while-revalidate: this reader gets the stored copy at once; nginx asks upstream behind it.
    assert (status, body) == (200, b"<div>banner</div>")
    assert headers["X-Cache-Status"] in ("STALE", "UPDATING", "REVALIDATED")
    deadline = time.monotonic() + 5
    while len(upstream.requests("/embed/short/")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    revalidation = upstream.requests("/embed/short/")[1]
    assert revalidation["If-None-Match"] == ETAG
    time.sleep(0.2)
    assert _get(url)[1]["X-Cache-Status"] == "HIT"  # the 304 refreshed the entry


def test_one_request_fills_a_new_entry_however_many_readers_wait(upstream, cache):
    url = f"{cache.url}/embed/slow/"
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: _get(url), range(20)))
    assert all(status == 200 for status, _, _ in answers)
    assert len(upstream.requests("/embed/slow/")) == 1


def test_each_article_origin_is_its_own_entry(upstream, cache):
    url = f"{cache.url}/embed/camp/"
    _get(url, Origin="https://a.example")
    _get(url, Origin="https://b.example")
    _get(url, Origin="https://a.example")
    origins = [headers.get("Origin") for headers in upstream.requests("/embed/camp/")]
    assert origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize("path", ["/embed/camp/", "/embed/camp.svg", "/api/campaigns/camp/progress.json",
                                  "/static/embed/jauge-embed.css"])
def test_public_reads_carry_no_cookie_either_way(upstream, cache, path):
    status, headers, _ = _get(f"{cache.url}{path}", Cookie="sessionid=secret; csrftoken=x")
    assert status == 200
    assert "Set-Cookie" not in headers
    assert "Cookie" not in upstream.requests(path)[0]


def test_pages_pass_cookies_and_are_not_cached(upstream, cache):
    for _ in range(2):
        status, headers, _ = _get(f"{cache.url}/c/camp/", Cookie="sessionid=secret")
        assert status == 200 and headers["Set-Cookie"] == "tracker=1; Path=/"
    seen = upstream.requests("/c/camp/")
    assert len(seen) == 2 and seen[0]["Cookie"] == "sessionid=secret"


def test_it_forwards_the_client_address_scheme_and_host(upstream, cache):
    _get(f"{cache.url}/c/camp/", **{"X-Forwarded-For": "203.0.113.9"})
    headers = upstream.requests("/c/camp/")[0]
    assert headers["X-Real-IP"] == "127.0.0.1"
    # What a TLS terminator in front recorded, then the peer nginx saw.
    assert headers["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["Host"] == f"127.0.0.1:{cache.port}"  # embeds build their URLs from it


@pytest.mark.postgres
def test_jauge_behind_the_cache_answers_hits_304s_and_revalidations_without_cookies(transactional_db, campaign):
    ledger.donation_record(campaign=campaign, source="generic", external_id="cache-1", amount_minor=2500,
                           donor_email="c@example.org")
    with Granian(process_env(), extra=("--access-log",)) as web, Nginx(f"127.0.0.1:{web.port}") as nginx:
        path = f"/embed/{campaign.slug}/"
        status, headers, body = _get(f"{nginx.url}{path}", Cookie="sessionid=stale")
        assert status == 200 and "Set-Cookie" not in headers
        assert "25,00" in body.decode()
        status, headers, _ = _get(f"{nginx.url}{path}")
        assert (status, headers["X-Cache-Status"]) == (200, "HIT")
        assert headers["Cache-Control"].startswith("public") and headers["Vary"] == "Origin"
        status, _, _ = _get(f"{nginx.url}{path}", **{"If-None-Match": headers["ETag"]})
        assert status == 304
        # After s-maxage (5 s), nginx asks Jauge with If-None-Match: Jauge answers 304, nothing rendered.
        # nginx keeps an entry while valid_sec >= now in whole seconds: up to s-maxage + 1 s.
        time.sleep(6.5)
        assert _get(f"{nginx.url}{path}")[0] == 200
        deadline = time.monotonic() + 10
        while not re.search(rf'"GET {re.escape(path)} HTTP/1.1" 304', web.output()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert re.findall(rf'"GET {re.escape(path)} HTTP/1.1" (\d+)', web.output()) == ["200", "304"]
        # The donation page is not cached and keeps its CSRF cookie.
        status, headers, _ = _get(f"{nginx.url}/c/{campaign.slug}/")
        assert status == 200 and "X-Cache-Status" not in headers
        assert "csrftoken=" in headers["Set-Cookie"]
