"""The one place that turns minor units into text and text into minor units (Babel).

Money is always an integer of minor units plus an ISO 4217 code; never a float.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision, list_currencies
from django.conf import settings
from django.utils import translation


class AmountError(ValueError):
    """A reader's or a provider's amount that cannot be money."""


@lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def is_known_currency(code: str) -> bool:
    return code in _known_currencies()


def minor_digits(currency: str) -> int:
    return get_currency_precision(currency)


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-minor_digits(currency))


def format_money(amount_minor: int, currency: str, locale: str | None = None) -> str:
    """`format_money(2007700, "EUR", "fr")` → '20 077,00 €' (narrow no-break group space).
    Without a locale: the active language (the admin's, a page's), else the site's."""
    if locale is None:
        locale = (translation.get_language() or settings.LANGUAGE_CODE)[:2]
    return format_currency(to_decimal(amount_minor, currency), currency, locale=locale)


_AMOUNT_RE = re.compile(r"^\d{1,9}(?:[.,]\d{1,2})?$")


def parse_amount(text: str, currency: str) -> int:
    """Parse what a reader types ("25", "25,50", "25.50", "25 €") into minor units."""
    cleaned = (text or "").strip()
    for junk in ("€", "$", "£", "\u00a0", "\u202f", " "):
        cleaned = cleaned.replace(junk, "")
    if not cleaned:
        raise AmountError("empty")
    if not _AMOUNT_RE.match(cleaned):
        raise AmountError("not an amount")
    try:
        value = Decimal(cleaned.replace(",", "."))
    except InvalidOperation:
        raise AmountError("not an amount") from None
    digits = minor_digits(currency)
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        raise AmountError("too many decimals")
    return int(minor)


def percent(total_minor: int, goal_minor: int) -> float:
    """Share of the goal, two decimals, uncapped (112.5 means overfunded)."""
    if goal_minor <= 0:
        return 0.0
    return float((Decimal(total_minor) * 100 / Decimal(goal_minor)).quantize(Decimal("0.01")))
