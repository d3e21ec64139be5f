"""Provider webhooks: verify, store raw, answer. Processing happens in a worker."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns import metrics
from campaigns.providers import WEBHOOK_SOURCES
from campaigns.providers.base import PayloadError, SignatureError, WebhookSource
from campaigns.services import intake

logger = logging.getLogger(__name__)

# What a provider is told to wait when the database cannot store its event (a restart takes seconds).
RETRY_AFTER_SECONDS = 5


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str) -> JsonResponse:
    source = WEBHOOK_SOURCES.get(provider)
    response = _answer(request, provider, source)
    # Unknown provider names come from the URL: one label for all of them.
    metrics.webhook_answer_count(provider=source.identifier if source else "unknown", status=response.status_code)
    return response


def _answer(request: HttpRequest, provider: str, source: WebhookSource | None) -> JsonResponse:
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
    try:
        created = intake.payment_event_receive(
            provider=source.identifier, event=event, body=request.body, headers=headers
        )
    except (OperationalError, InterfaceError) as exc:
        # Not stored (or not known to be): the provider must deliver again. A retry of an event
        # that did commit is answered 200 as a duplicate, so nothing counts twice.
        logger.warning("webhook %s not stored, database unavailable: %r", event.event_id, exc)
        response = JsonResponse({"error": "cannot store the event now, retry later"}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if not created:
        return JsonResponse({"status": "duplicate", "event": event.event_id}, status=200)
    return JsonResponse({"status": "stored", "event": event.event_id}, status=202)
