"""Who is asking: the one place a view reads the client's address (limits per address).

The socket address for now; resolving it behind trusted proxies (django-ipware) replaces this
function's body, and every caller follows.
"""

from __future__ import annotations

from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or ""
