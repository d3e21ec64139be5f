"""Talking HTTP to a real server subprocess (gunicorn on loopback), with hard timeouts."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

from campaigns.signing import SIGNATURE_HEADER, sign
from tests.factories import WEBHOOK_SECRET


def request(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                     headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def post_signed(base_url: str, body: bytes, timeout: float = 10) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET, int(time.time()))}
    status, _, raw = request("POST", f"{base_url}/hooks/generic/", body, headers, timeout)
    return status, json.loads(raw or b"{}")


def get_json(url: str, timeout: float = 10) -> tuple[int, dict]:
    status, _, raw = request("GET", url, timeout=timeout)
    return status, json.loads(raw or b"{}")
