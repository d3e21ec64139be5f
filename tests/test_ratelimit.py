"""The rate limit never breaks a donation, and no header a client sends moves it."""

from __future__ import annotations

import ipaddress
import logging
import socket

import pytest
from django.test import RequestFactory, override_settings

from campaigns.clientip import client_address
from campaigns.models import Donation
from tests.test_settings import load_settings

pytestmark = pytest.mark.django_db

FORM = {"amount": "25", "frequency": "once", "name": "Marie", "email": "m@example.org", "provider": "sandbox"}
PROXY = "10.0.0.2"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.DONATE_RATE_LIMIT = "3/10m"
    settings.PAYMENT_PROVIDERS = ["sandbox"]
    settings.TRUSTED_PROXIES = []


def _post(client, **meta):
    return client.post("/c/test-campaign/donate/", FORM, **meta)


def test_rotating_client_headers_from_an_untrusted_peer_still_meets_the_429(client, campaign):
    statuses = [
        _post(client, REMOTE_ADDR="203.0.113.10", HTTP_X_REAL_IP=f"198.51.100.{n}",
              HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code
        for n in range(5)
    ]
    assert statuses == [302, 302, 302, 429, 429]
    assert Donation.objects.count() == 3


def test_behind_a_trusted_proxy_each_reader_has_their_own_count(client, campaign, settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    for _ in range(3):
        assert _post(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 302
    assert _post(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    # What the reader prepends is not believed: the proxy appended the address it saw.
    assert _post(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.1").status_code == 429
    assert _post(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 302


@pytest.mark.parametrize("header", ["garbage", "", " , ", "1.2.3.4.5", "unknown", "198.51.100.1, nonsense",
                                    "\u00e9\u00e9", "[::1", "9" * 5000])
def test_a_missing_or_malformed_header_falls_back_to_the_socket_address(client, campaign, settings, header):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network(PROXY)]
    response = _post(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=header)
    assert response.status_code == 302
    request = RequestFactory().post("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=header)
    assert client_address(request) == PROXY


def test_client_address_walks_right_to_left_past_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")]
    factory = RequestFactory()
    cases = [
        ({"REMOTE_ADDR": "203.0.113.5", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, "203.0.113.5"),
        ({"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"),
        ({"REMOTE_ADDR": "2001:db8::1", "HTTP_X_FORWARDED_FOR": "[2001:db8:ffff::1]:443, 198.51.100.7:5555"},
         "198.51.100.7"),
        ({"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": "::ffff:198.51.100.9"}, "198.51.100.9"),
        ({"REMOTE_ADDR": "10.1.2.3"}, "10.1.2.3"),
    ]
    for meta, expected in cases:
        assert client_address(factory.get("/", **meta)) == expected, meta


def test_client_header_can_be_x_real_ip(settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1")]
    settings.CLIENT_IP_META_KEY = "HTTP_X_REAL_IP"
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="198.51.100.3",
                                   HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert client_address(request) == "198.51.100.3"


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_donation_form_works_with_redis_down(client, campaign, caplog):
    dead = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                        "LOCATION": f"redis://127.0.0.1:{_dead_port()}/0", "KEY_PREFIX": "jauge-dead",
                        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    with override_settings(CACHES=dead), caplog.at_level(logging.WARNING, logger="campaigns"):
        from campaigns.progress_cache import progress_local_forget

        progress_local_forget()
        assert client.get("/c/test-campaign/").status_code == 200
        response = _post(client, REMOTE_ADDR="203.0.113.20")
        assert response.status_code == 302, response.content.decode()[:2000]
    assert Donation.objects.count() == 1
    assert "rate limit skipped" in caplog.text


def test_the_old_header_setting_alone_is_refused_naming_it():
    result = load_settings(RATELIMIT_IP_META_KEY="HTTP_X_REAL_IP")
    assert result.returncode != 0
    assert "RATELIMIT_IP_META_KEY" in result.stderr and "TRUSTED_PROXIES" in result.stderr


def test_the_old_header_setting_with_trusted_proxies_names_the_header():
    code = "from django.conf import settings; print(settings.CLIENT_IP_META_KEY)"
    import subprocess
    import sys

    from tests.test_settings import ROOT

    result = subprocess.run([sys.executable, "-c", f"import django; django.setup()\n{code}"], cwd=ROOT,
                            env={**__import__("os").environ, "RATELIMIT_IP_META_KEY": "HTTP_X_REAL_IP",
                                 "TRUSTED_PROXIES": "127.0.0.1", "DJANGO_SETTINGS_MODULE": "config.settings"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HTTP_X_REAL_IP"


@pytest.mark.parametrize("value", ["10.0.0.0/33", "proxy.example.org", "10.0.0.1,,nonsense"])
def test_a_bad_trusted_proxy_list_stops_the_process(value):
    result = load_settings(TRUSTED_PROXIES=value)
    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr
