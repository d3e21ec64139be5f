"""Template helpers: money and progress formatted by Babel for a locale."""

from __future__ import annotations

from typing import Any

from django import template

from campaigns import money

register = template.Library()


@register.simple_tag
def format_money(amount_minor: int, currency: str, locale: str = "fr") -> str:
    return money.format_money(amount_minor, currency, locale)


def progress_context(snapshot: dict[str, Any], locale: str) -> dict[str, Any]:
    """What a progress fragment shows, derived from a cached snapshot (no database)."""
    currency = snapshot["currency"]
    percent = snapshot["percent"]
    return {
        **snapshot,
        "total_display": money.format_money(snapshot["total_minor"], currency, locale),
        "goal_display": money.format_money(snapshot["goal_minor"], currency, locale),
        "pending_display": money.format_money(snapshot["pending_minor"], currency, locale),
        "bar_percent": f"{min(percent, 100.0):.2f}",
        "percent_display": f"{percent:.0f}",
    }
