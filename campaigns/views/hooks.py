"""Provider webhooks: verify, store raw, answer. Processing happens in a worker."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns.providers import WEBHOOK_SOURCES
from campaigns.providers.base import PayloadError, SignatureError
from campaigns.services import intake


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str) -> JsonResponse:
    source = WEBHOOK_SOURCES.get(provider)
    if source is None:
        return JsonResponse({"error": f"unknown provider {provider!r}: it receives no webhooks of its own"},
                            status=404)
    try:
        source.verify(body=request.body, headers=request.headers)
    except SignatureError as exc:
        return JsonResponse({"error": f"signature: {exc}"}, status=401)
    try:
        event = source.parse(request.body)
    except PayloadError as exc:
        return JsonResponse({"error": str(exc), "field": exc.field}, status=400)
    headers = {name: request.headers[name] for name in source.kept_headers if name in request.headers}
    created = intake.payment_event_receive(provider=source.identifier, event=event, body=request.body, headers=headers)
    if not created:
        return JsonResponse({"status": "duplicate", "event": event.event_id}, status=200)
    return JsonResponse({"status": "stored", "event": event.event_id}, status=202)
