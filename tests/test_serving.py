"""Web as docker-compose.yml and the Procfile run it (granian, WSGI): the editors' live stream (SSE) keeps
working beside the banner, and a HUP respawns the workers without a failed request."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from bench.harness import Granian
from campaigns.services import ledger
from tests.live import request
from tests.worker import process_env

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _read_event(response: http.client.HTTPResponse, timeout: float) -> str:
    """The next SSE message that is not a comment (keep-alive)."""
    deadline = time.monotonic() + timeout
    message = ""
    while time.monotonic() < deadline:
        line = response.readline().decode()
        if not line:
            raise EOFError("the stream ended")
        if line == "\n":
            if message and not message.startswith(":"):
                return message
            message = ""
            continue
        message += line
    raise TimeoutError(f"no event in {timeout} s")


def test_the_dashboard_stream_works_beside_the_banner_under_the_shipped_server(transactional_db, campaign):
    editor = User.objects.create_user("editor", password="x", is_staff=True)
    editor.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    browser = Client()
    browser.force_login(editor)
    session = browser.cookies["sessionid"].value
    with Granian(process_env()) as web:
        stream = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
        stream.request("GET", f"/dashboard/{campaign.slug}/events/", headers={"Cookie": f"sessionid={session}"})
        response = stream.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream"
        assert _read_event(response, 10).startswith("retry:")  # subscribed
        # The open stream holds one thread; readers' banners are still answered.
        for _ in range(20):
            assert request("GET", f"{web.url}/embed/{campaign.slug}/")[0] == 200
        ledger.donation_record(campaign=campaign, source="manual", external_id="sse-1", amount_minor=4200,
                               donor_email="sse@example.org")
        deadline = time.monotonic() + 20
        totals = []
        while 4200 not in totals:  # a snapshot published before the gift may come first
            event = _read_event(response, deadline - time.monotonic())
            assert event.startswith("event: progress\n")
            totals.append(json.loads(event.split("data: ", 1)[1])["total_minor"])
        stream.close()


def test_a_hup_respawns_the_workers_without_a_failed_request(transactional_db, campaign):
    with Granian(process_env()) as web:
        url = f"{web.url}/embed/{campaign.slug}/"
        failures: list[str] = []
        answered = 0
        stop = threading.Event()

        def poll() -> None:
            nonlocal answered
            while not stop.is_set():
                try:
                    status = request("GET", url, timeout=10)[0]
                except OSError as exc:
                    failures.append(repr(exc))
                    continue
                if status == 200:
                    answered += 1
                else:
                    failures.append(str(status))

        reader = threading.Thread(target=poll)
        reader.start()
        try:
            time.sleep(1)
            os.kill(web.proc.pid, signal.SIGHUP)
            deadline = time.monotonic() + 30
            while "respawning" not in web.output() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(3)  # the new workers serve
        finally:
            stop.set()
            reader.join(15)
        assert "HUP signal received" in web.output()
        assert failures == []
        assert answered > 20
