"""Provider webhooks: verify, store raw, answer. Processing happens in a worker."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns.providers import get_provider
from campaigns.providers.base import PayloadError, SignatureError
from campaigns.providers.sandbox import SandboxProvider, sandbox_enabled
from campaigns.services import intake


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str) -> JsonResponse:
    handler = get_provider(provider)
    if handler is None or (isinstance(handler, SandboxProvider) and not sandbox_enabled()):
        return JsonResponse({"error": f"unknown provider {provider!r}"}, status=404)
    try:
        handler.verify(request)
    except SignatureError as exc:
        return JsonResponse({"error": f"signature: {exc}"}, status=401)
    try:
        event = handler.parse(request.body)
    except PayloadError as exc:
        return JsonResponse({"error": str(exc), "field": exc.field}, status=400)
    headers = {name: request.headers[name] for name in handler.kept_headers if name in request.headers}
    created = intake.payment_event_receive(provider=handler.identifier, event=event, body=request.body, headers=headers)
    if not created:
        return JsonResponse({"status": "duplicate", "event": event.event_id}, status=200)
    return JsonResponse({"status": "stored", "event": event.event_id}, status=202)
