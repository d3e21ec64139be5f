"""Template context for every page Jauge renders."""

from __future__ import annotations

from django.http import HttpRequest

from campaigns.providers.sandbox import test_mode_shown


def test_mode(request: HttpRequest) -> dict:
    """A sandbox outside development: every page says the money is fake (templates/base.html)."""
    return {"jauge_test_mode": test_mode_shown()}
