"""/metrics: Prometheus text format, for a bearer token or an allowed network only."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from campaigns.metrics import metrics_render


def _allowed(request: HttpRequest) -> bool:
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
    if settings.METRICS_TOKEN and token and hmac.compare_digest(token.encode(), settings.METRICS_TOKEN.encode()):
        return True
    if settings.METRICS_ALLOWED_NETWORKS:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)
    return False


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not (settings.METRICS_TOKEN or settings.METRICS_ALLOWED_NETWORKS):
        # Safe default: nothing to see until an operator allows someone.
        return JsonResponse({"error": "metrics are off: set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS"}, status=404)
    if not _allowed(request):
        return JsonResponse({"error": "forbidden"}, status=403)
    return HttpResponse(metrics_render(), content_type="text/plain; version=0.0.4; charset=utf-8")
