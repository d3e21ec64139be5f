"""Signing of the generic webhook, importable without Django (scripts, load generators).

`X-Jauge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Jauge-Signature"


class SignatureError(Exception):
    """Missing, bad or stale signature: answer 401, store nothing."""


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value for `body`; used by the sandbox provider, scripts and tests."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify_signature(header: str, body: bytes, secret: str, tolerance: int, now: float | None = None) -> None:
    if not secret:
        raise SignatureError("webhook secret not configured")
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not header.isascii():
        # compare_digest refuses non-ASCII text with a TypeError: that was a 500.
        raise SignatureError("signature header is not ASCII")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("signature has no valid timestamp") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError("signature timestamp outside the tolerance window")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    # Several v1 values are allowed, so a secret can be rotated without downtime.
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise SignatureError("signature does not match")
