"""The client's address, for the donation rate limit: never taken from a header anyone can send.

A header naming the client (X-Forwarded-For, X-Real-IP) is believed only when the socket's peer is
one of TRUSTED_PROXIES, and then read right to left past the trusted proxies (nginx's
`real_ip_recursive`): the first address a trusted proxy did not add itself is the client. A missing,
empty or malformed header falls back to the socket's peer. python-ipware parses each hop (ports,
brackets, IPv4-mapped IPv6); its own trusted-proxy option checks the header's chain, not the peer,
so a client talking to Jauge directly could forge it: the gate on the peer is ours.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited
from python_ipware.modern.parsers import parse_ip

logger = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _trusted(address: Address) -> bool:
    return any(address.version == network.version and address in network for network in settings.TRUSTED_PROXIES)


def client_address(request: HttpRequest) -> str:
    peer_text = request.META.get("REMOTE_ADDR", "")
    peer = parse_ip(peer_text)
    if peer is None:
        # A unix socket or a test client: whatever the server gave, as one bucket.
        return peer_text or "unknown"
    if not settings.TRUSTED_PROXIES or not _trusted(peer):
        return str(peer)
    raw = request.META.get(settings.CLIENT_IP_META_KEY, "")
    if not isinstance(raw, str) or not raw.strip():
        return str(peer)
    hops = []
    for token in raw.split(","):
        hop = parse_ip(token)
        if hop is None:
            # Malformed: nothing in this header can be believed.
            return str(peer)
        hops.append(hop)
    for hop in reversed(hops):
        if not _trusted(hop):
            return str(hop)
    # Every hop is one of ours (a health check from inside): the leftmost is as close as it gets.
    return str(hops[0])


def post_rate_limited(request: HttpRequest, *, group: str, rate_setting: str) -> bool:
    """Whether this client address has posted to `group` more than the setting `rate_setting` allows
    (django-ratelimit syntax, read at each call). Every post counts, valid or not. With the cache
    holding the counters down, the limit is skipped (logged): a page must not fail for it."""
    try:
        return is_ratelimited(request, group=group, key=lambda _group, req: client_address(req),
                              rate=lambda _group, _req: getattr(settings, rate_setting), method="POST",
                              increment=True)
    except Exception:
        logger.warning("%s rate limit skipped: its cache is unavailable", group, exc_info=True)
        return False
