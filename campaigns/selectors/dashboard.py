"""The editors' dashboard: read-only aggregates over the ledger, and the SVG charts.

Unlike the public read paths, the dashboard may aggregate (a few editors look at it), and it
aggregates the ledger itself, so every number it shows is the ledger's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from babel.dates import format_skeleton
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from campaigns import money
from campaigns.models import Campaign, CampaignTotal, Donation, LedgerEntry, Milestone, days_between

CHART_WIDTH = 640
CHART_HEIGHT = 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 8, 8, 12, 22


@dataclass
class Dashboard:
    campaign: Campaign
    total_minor: int
    counter_total_minor: int
    donations: int
    donors: int
    pending_minor: int
    by_day: list[tuple[date, int]]
    by_source: list[dict[str, Any]]
    top_articles: list[dict[str, Any]]
    recent: list[Donation]
    days_left: int
    needed_per_day_minor: int | None
    projection_minor: int
    # The campaign's milestones in increasing amounts; those reached carry when (the timeline).
    milestones: list[Milestone] = field(default_factory=list)
    # A sponsor's money matched to gifts (Σ match entries of the ledger; part of total_minor, and
    # shown apart: its own row in by_source, never in the articles' money).
    matched_minor: int = 0
    matched_donations: int = 0
    charts: dict[str, Any] = field(default_factory=dict)

    @property
    def percent(self) -> float:
        return money.percent(self.total_minor, self.campaign.goal_minor)


def dashboard_data(*, campaign_id: int, now: datetime | None = None, recent_count: int = 10) -> Dashboard:
    now = now or timezone.now()
    campaign = Campaign.objects.get(pk=campaign_id)
    counter = CampaignTotal.objects.filter(campaign_id=campaign_id).first()
    entries = LedgerEntry.objects.filter(campaign_id=campaign_id)
    total_minor = entries.aggregate(total=Sum("delta_minor"))["total"] or 0
    tz = timezone.get_current_timezone()
    by_day = [
        (row["day"], row["amount"])
        for row in entries.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(amount=Sum("delta_minor"))
        .order_by("day")
    ]
    labels = dict(Donation.Source.choices)
    given = entries.exclude(kind=LedgerEntry.Kind.MATCH)
    by_source = [
        {"source": row["donation__source"], "label": labels.get(row["donation__source"], row["donation__source"]),
         "amount_minor": row["amount"], "donations": row["donations"]}
        for row in given.values("donation__source")
        .annotate(amount=Sum("delta_minor"), donations=Count("donation", distinct=True))
        .order_by("-amount", "donation__source")
    ]
    matched = entries.filter(kind=LedgerEntry.Kind.MATCH).aggregate(
        amount=Sum("delta_minor"), donations=Count("donation", distinct=True, filter=Q(delta_minor__gt=0)))
    if matched["amount"]:
        sponsor = _("Abondement") + (f" ({campaign.match_sponsor})" if campaign.match_sponsor else "")
        by_source.append({"source": "match", "label": sponsor, "amount_minor": matched["amount"],
                          "donations": matched["donations"]})
        by_source.sort(key=lambda row: -row["amount_minor"])
    top_articles = [
        {"url": row["donation__article_url"], "amount_minor": row["amount"], "donations": row["donations"]}
        for row in given.exclude(donation__article_url="")
        .values("donation__article_url")
        .annotate(amount=Sum("delta_minor"), donations=Count("donation", distinct=True))
        .filter(amount__gt=0)
        .order_by("-amount", "donation__article_url")[:10]
    ]
    recent = list(
        Donation.objects.filter(
            campaign_id=campaign_id, status__in=(Donation.Status.CONFIRMED, Donation.Status.REFUNDED)
        ).order_by("-confirmed_at", "-pk")[:recent_count]
    )
    # Pace: what each remaining day must bring to reach the goal by the end date.
    days_left = days_between(max(now, campaign.starts_at), campaign.ends_at)
    remaining = max(0, campaign.goal_minor - total_minor)
    needed = math.ceil(remaining / days_left) if days_left else None
    # Projection: the average daily take so far, continued to the end date.
    elapsed = days_between(campaign.starts_at, min(now, campaign.ends_at))
    projection = total_minor + (total_minor * days_left // elapsed if elapsed else 0)
    dashboard = Dashboard(
        campaign=campaign,
        total_minor=total_minor,
        counter_total_minor=counter.total_minor if counter else 0,
        donations=counter.donation_count if counter else 0,
        donors=counter.donor_count if counter else 0,
        pending_minor=counter.pending_minor if counter else 0,
        by_day=by_day,
        by_source=by_source,
        top_articles=top_articles,
        recent=recent,
        days_left=days_left,
        needed_per_day_minor=needed,
        projection_minor=projection,
        milestones=list(Milestone.objects.filter(campaign_id=campaign_id).order_by("amount_minor")),
        matched_minor=matched["amount"] or 0,
        matched_donations=matched["donations"] or 0,
    )
    dashboard.charts = {
        "cumulative": cumulative_chart(dashboard, now=now),
        "daily": daily_chart(dashboard, now=now),
        "sources": sources_chart(dashboard),
    }
    return dashboard


def _local_date(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def _day_range(dashboard: Dashboard, now: datetime) -> tuple[date, date]:
    campaign = dashboard.campaign
    first = _local_date(campaign.starts_at)
    last = _local_date(campaign.ends_at)
    if dashboard.by_day:
        first = min(first, dashboard.by_day[0][0])
        last = max(last, dashboard.by_day[-1][0])
    return first, max(last, first + timedelta(days=1))


def _fmt(amount_minor: int, currency: str) -> str:
    return money.format_money(amount_minor, currency)


def _day(day: date) -> str:
    """A chart's day in the editor's language: `24 nov.` in French, `Nov 24` in English."""
    return format_skeleton("MMMd", day, locale=(get_language() or "fr")[:2])


def cumulative_chart(dashboard: Dashboard, *, now: datetime) -> dict[str, Any]:
    """Cumulative total per day against the goal, the pace still needed and the projection."""
    campaign = dashboard.campaign
    first, last = _day_range(dashboard, now)
    span = (last - first).days or 1
    top = max(campaign.goal_minor, dashboard.total_minor, dashboard.projection_minor, 1) * 1.08
    inner_w = CHART_WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = CHART_HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(day: date, end_of_day: bool = True) -> float:
        return round(PAD_LEFT + inner_w * ((day - first).days + (1 if end_of_day else 0)) / (span + 1), 1)

    def y(amount: int) -> float:
        return round(PAD_TOP + inner_h * (1 - max(amount, 0) / top), 1)

    points = [(x(first, end_of_day=False), y(0))]
    running = 0
    for day, amount in dashboard.by_day:
        points.append((x(day, end_of_day=False), y(running)))
        running += amount
        points.append((x(day), y(running)))
    today = min(max(_local_date(now), first), last)
    points.append((x(today), y(running)))
    chart: dict[str, Any] = {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "total_minor": running,
        "line": " ".join(f"{px},{py}" for px, py in points),
        "goal_y": y(campaign.goal_minor),
        "left": PAD_LEFT,
        "right": CHART_WIDTH - PAD_RIGHT,
        "baseline": y(0),
        "now_x": x(today),
        "now_y": y(running),
        "end_x": x(_local_date(campaign.ends_at)),
        "goal_label": _fmt(campaign.goal_minor, campaign.currency),
        "first_label": _day(first),
        "last_label": _day(last),
        "pace": None,
        "projection": None,
    }
    if dashboard.days_left:
        chart["pace"] = {"x2": chart["end_x"], "y2": y(campaign.goal_minor)}
        chart["projection"] = {"x2": chart["end_x"], "y2": y(dashboard.projection_minor)}
    return chart


def daily_chart(dashboard: Dashboard, *, now: datetime) -> dict[str, Any]:
    """Money booked per day (net of refunds and corrections) as bars."""
    first, last = _day_range(dashboard, now)
    span = (last - first).days + 1
    inner_w = CHART_WIDTH - PAD_LEFT - PAD_RIGHT
    height = 140
    inner_h = height - PAD_TOP - PAD_BOTTOM
    peak = max((abs(amount) for _, amount in dashboard.by_day), default=0) or 1
    slot = inner_w / span
    bars = []
    for day, amount in dashboard.by_day:
        h = round(inner_h * abs(amount) / peak, 1)
        bars.append({
            "x": round(PAD_LEFT + slot * (day - first).days + slot * 0.1, 1),
            "y": round(PAD_TOP + inner_h - h, 1) if amount >= 0 else PAD_TOP + inner_h,
            "w": round(max(slot * 0.8, 1), 1),
            "h": max(h, 1),
            "negative": amount < 0,
            "title": _("%(day)s : %(amount)s") % {
                "day": _day(day), "amount": _fmt(amount, dashboard.campaign.currency)},
        })
    return {"width": CHART_WIDTH, "height": height, "bars": bars, "baseline": PAD_TOP + inner_h,
            "left": PAD_LEFT, "right": CHART_WIDTH - PAD_RIGHT,
            "peak_label": _fmt(peak, dashboard.campaign.currency)}


def sources_chart(dashboard: Dashboard) -> dict[str, Any]:
    """One horizontal bar per source."""
    peak = max((row["amount_minor"] for row in dashboard.by_source), default=0) or 1
    rows = []
    for index, row in enumerate(dashboard.by_source):
        rows.append({
            **row,
            "y": index * 28,
            "w": round(max(0, row["amount_minor"]) * 380 / peak, 1),
            "display": _fmt(row["amount_minor"], dashboard.campaign.currency),
        })
    return {"rows": rows, "height": max(28, 28 * len(rows))}
