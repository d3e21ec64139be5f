"""Fakes of Stripe's API over real HTTP on 127.0.0.1, the library pointed at them by `stripe.api_base`:
the subscription and billing-portal calls *Mes dons* makes (recorded request by request: method,
path, form, idempotency key, for tests to assert), and the shared plumbing of such fakes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import stripe


class FakeStripeHandler(BaseHTTPRequestHandler):
    """Form-encoded requests in, JSON out, like Stripe's API."""

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}

    def _answer(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def stripe_api_served_by(handler: type[BaseHTTPRequestHandler]) -> Iterator[None]:
    """Serve `handler` on a free port and point the Stripe library at it for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    previous = stripe.api_base
    stripe.api_base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield
    finally:
        stripe.api_base = previous
        server.shutdown()
        server.server_close()


class FakeStripeSubscriptions(FakeStripeHandler):
    requests: list[dict] = []
    # When set, every call answers this Stripe error (HTTP 400, never retried by the library).
    fail_with: str = ""
    fail_methods: tuple[str, ...] = ("GET", "POST", "DELETE")
    # What GET answers on top of the subscription below (its state at Stripe).
    remote: dict = {}
    # Seconds each answer waits (a slow Stripe: widens the window two clicks race in).
    delay: float = 0.0

    def _record(self) -> dict:
        request = {"method": self.command, "path": self.path.split("?")[0], "form": self._form(),
                   "key": self.headers.get("Idempotency-Key", "")}
        FakeStripeSubscriptions.requests.append(request)
        return request

    def _handle(self) -> None:
        request = self._record()
        time.sleep(FakeStripeSubscriptions.delay)
        if FakeStripeSubscriptions.fail_with and self.command in FakeStripeSubscriptions.fail_methods:
            return self._answer(400, {"error": {"type": "invalid_request_error",
                                                "message": FakeStripeSubscriptions.fail_with}})
        path = request["path"]
        if path.startswith("/v1/subscriptions/"):
            sub_id = path.rsplit("/", 1)[1]
            status = "canceled" if self.command == "DELETE" else "active"
            answer = subscription_object(sub_id, status=status)
            if self.command == "GET":
                answer.update(FakeStripeSubscriptions.remote)
            return self._answer(200, answer)
        if path == "/v1/billing_portal/sessions":
            return self._answer(200, {"id": "bps_1", "object": "billing_portal.session",
                                      "customer": request["form"].get("customer"),
                                      "url": "https://billing.stripe.test/p/session/bps_1"})
        self._answer(404, {"error": {"type": "invalid_request_error", "message": "no such path"}})

    do_GET = do_POST = do_DELETE = _handle  # noqa: N815 (http.server's names)


def subscription_object(sub_id: str, *, status: str = "active") -> dict:
    return {
        "id": sub_id, "object": "subscription", "customer": "cus_1", "status": status, "pause_collection": None,
        "items": {"object": "list", "data": [{
            "id": "si_1", "object": "subscription_item",
            "price": {"id": "price_1", "object": "price", "product": "prod_1", "unit_amount": 1500,
                      "currency": "eur", "recurring": {"interval": "month"}},
        }]},
    }


@contextmanager
def fake_stripe_server() -> Iterator[type[FakeStripeSubscriptions]]:
    FakeStripeSubscriptions.requests, FakeStripeSubscriptions.fail_with = [], ""
    FakeStripeSubscriptions.delay, FakeStripeSubscriptions.remote = 0.0, {}
    FakeStripeSubscriptions.fail_methods = ("GET", "POST", "DELETE")
    with stripe_api_served_by(FakeStripeSubscriptions):
        yield FakeStripeSubscriptions
