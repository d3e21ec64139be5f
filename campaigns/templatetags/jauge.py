"""Template helpers: money and progress formatted by Babel for a locale, banner theming.

Everything here works from a cached progress snapshot (selectors.progress.campaign_progress): no database.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import nh3
from babel.numbers import format_decimal, format_percent
from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext

from campaigns import money
from campaigns.models import Campaign, campaign_text, days_between, text_in

register = template.Library()


@register.filter
def title_in(campaign: Campaign, lang: str | None) -> str:
    """The campaign's title for a reader of `lang` (its own language's as the fallback)."""
    return campaign_text(campaign, lang).title

# The model's defaults, for snapshots that lack a colour.
DEFAULT_THEME = {name: Campaign._meta.get_field(name).default for name in ("color_primary", "color_background",
                                                                          "color_text")}
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# A font stack is names, commas, spaces, quotes and hyphens; anything else (`;`, `(`, `}`) could
# smuggle other CSS declarations into the banner's style attribute.
_FONT_JUNK = re.compile(r"[^\w\s,'\"-]")
_APPEAL_TAGS = {"p", "br", "strong", "em", "b", "i", "a"}
WCAG_AA_TEXT = 4.5


@register.simple_tag
def format_money(amount_minor: int, currency: str, locale: str | None = None) -> str:
    return money.format_money(amount_minor, currency, locale)


def _percent_floor(percent: float) -> int:
    # Floor, not round: 99.6 % must not read "100 %" while the goal is not reached.
    return math.floor(percent)


def progress_state(snapshot: dict[str, Any] | None, now: datetime | None = None) -> str:
    """`hidden` (nothing to show), `live` (keeps polling) or `ended` (final numbers, no polling)."""
    if snapshot is None or snapshot["status"] == Campaign.Status.DRAFT:
        return "hidden"
    now = now or timezone.now()
    if snapshot["status"] == Campaign.Status.CLOSED or datetime.fromisoformat(snapshot["ends_at"]) <= now:
        return "ended"
    return "live"


def match_live(snapshot: dict[str, Any] | None, now: datetime) -> bool:
    """Whether the banner announces the match now: inside its window, with some of its cap left.
    Time moves it without a new version, so the embeds put it in their ETag."""
    match = snapshot.get("match") if snapshot else None
    if not match or match["remaining_minor"] <= 0:
        return False
    return datetime.fromisoformat(match["starts_at"]) <= now < datetime.fromisoformat(match["ends_at"])


def match_context(snapshot: dict[str, Any], locale: str, now: datetime) -> dict[str, str]:
    """« Chaque don est doublé jusqu'à 5 000,00 € », the sponsor and what is left, or nothing."""
    if not match_live(snapshot, now):
        return {"match_display": "", "match_sponsor_display": "", "match_remaining_display": ""}
    match, currency = snapshot["match"], snapshot["currency"]
    cap = money.format_money(match["cap_minor"], currency, locale)
    if match["ratio"] == 1:
        text = gettext("Chaque don est doublé jusqu'à %(cap)s") % {"cap": cap}
    elif match["ratio"] == 2:
        text = gettext("Chaque don est triplé jusqu'à %(cap)s") % {"cap": cap}
    else:
        text = gettext("Chaque don est multiplié par %(factor)s jusqu'à %(cap)s") % {
            "factor": match["ratio"] + 1, "cap": cap}
    return {
        "match_display": text,
        "match_sponsor_display": gettext("grâce à %(sponsor)s") % {"sponsor": match["sponsor"]}
        if match.get("sponsor") else "",
        "match_remaining_display": gettext("reste %(remaining)s") % {
            "remaining": money.format_money(match["remaining_minor"], currency, locale)},
    }


def progress_context(snapshot: dict[str, Any], locale: str) -> dict[str, Any]:
    """What a progress fragment shows, derived from a cached snapshot (no database)."""
    currency = snapshot["currency"]
    percent = snapshot["percent"]
    goal = snapshot["goal_minor"]
    total_minor = snapshot["total_minor"]
    pending = snapshot.get("pending_minor", 0)
    next_minor = snapshot.get("next_milestone_minor")
    next_label = next(
        (m["label"] for m in snapshot.get("milestones", ()) if m["amount_minor"] == next_minor), ""
    )
    # Past the goal, the bar measures the way to the next stretch goal (a milestone above it);
    # the text still names the first goal.
    stretch = next_minor is not None and total_minor >= goal
    scale = next_minor if stretch else goal
    bar = min(total_minor * 100 / scale, 100.0) if stretch else min(percent, 100.0)
    # The pending segment sits after the confirmed fill and never pushes the bar past 100 %.
    pending_bar = min(max(0.0, 100.0 - bar), pending * 100 / scale) if scale > 0 else 0.0
    floor = _percent_floor(percent)
    now = timezone.now()
    state = progress_state(snapshot, now)
    days = days_between(now, datetime.fromisoformat(snapshot["ends_at"])) if state == "live" else 0
    # The reader's language's title and appeal (each falls back to the campaign's own language).
    text = text_in(title=snapshot["title"], appeal=snapshot.get("appeal", ""),
                   locale=snapshot.get("locale") or locale, translations=snapshot.get("translations"), lang=locale)
    total_display = money.format_money(snapshot["total_minor"], currency, locale)
    goal_display = money.format_money(goal, currency, locale)
    percent_display = format_percent(floor / 100, locale=locale)
    next_display = money.format_money(next_minor, currency, locale) if next_minor is not None else ""
    valuetext = gettext("%(percent)s de l'objectif : %(total)s collectés sur %(goal)s") % {
        "percent": percent_display, "total": total_display, "goal": goal_display}
    if stretch:
        valuetext = gettext("Objectif de %(goal)s atteint : %(total)s collectés, prochain objectif %(next)s") % {
            "goal": goal_display, "total": total_display, "next": next_display}
    return {
        **snapshot,
        "title": text.title,
        "appeal": text.appeal,
        "title_lang": text.title_lang,
        "appeal_lang": text.appeal_lang,
        "total_display": total_display,
        "goal_display": goal_display,
        "pending_display": money.format_money(pending, currency, locale),
        "has_pending": pending > 0,
        "bar_percent": f"{bar:.2f}",
        "pending_bar_percent": f"{pending_bar:.2f}",
        "percent_int": floor,
        "percent_display": percent_display,
        "overfunded": percent > 100,
        "valuetext": valuetext,
        "next_display": next_display,
        "next_label": next_label,
        "stretch": stretch,
        **match_context(snapshot, locale, now),
        "donors_display": ngettext("%(count)s donateur", "%(count)s donateurs", snapshot["donors"])
        % {"count": format_decimal(snapshot["donors"], locale=locale)},
        "state": state,
        "days_left": days,
        "days_display": (
            ngettext("%(days)s jour restant", "%(days)s jours restants", days) % {"days": days}
            if state == "live"
            else gettext("Campagne terminée")
        ),
    }


def appeal_html(text: str) -> SafeString:
    """Campaign text as safe HTML: a handful of inline tags, no script, no event handlers."""
    cleaned = nh3.clean(
        text or "",
        tags=_APPEAL_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned.strip().replace("\n", "<br>"))  # noqa: S308 - nh3 output, line breaks only


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _readable_on(background: str) -> str:
    # Black or white, whichever contrasts more: one of them always passes AA (≥ 4.58).
    return "#000000" if contrast_ratio("#000000", background) >= contrast_ratio("#ffffff", background) else "#ffffff"


def banner_theme(snapshot: dict[str, Any]) -> dict[str, str]:
    """The campaign's colours and font, validated and adjusted so text passes WCAG AA."""
    colours = {}
    for field, default in DEFAULT_THEME.items():
        value = snapshot.get(field) or default
        colours[field] = value.lower() if _HEX_COLOUR.match(value) else default
    background, text = colours["color_background"], colours["color_text"]
    if contrast_ratio(text, background) < WCAG_AA_TEXT:
        text = _readable_on(background)
    primary = colours["color_primary"]
    font = " ".join(_FONT_JUNK.sub("", snapshot.get("font_family") or "").split())[:200]
    return {
        "primary": primary,
        "on_primary": _readable_on(primary),
        "background": background,
        "text": text,
        "font": font,
    }


def banner_style(theme: dict[str, str]) -> str:
    """CSS custom properties for the banner's root element (values already validated)."""
    style = (
        f"--jauge-primary:{theme['primary']};--jauge-on-primary:{theme['on_primary']};"
        f"--jauge-bg:{theme['background']};--jauge-text:{theme['text']}"
    )
    if theme["font"]:
        style += f";--jauge-font:{theme['font']}"
    return style
