"""Progress reads. The hot ones (progress.json, banner) are O(1): one cached snapshot per campaign
(campaigns.progress_cache), built from the CampaignTotal counter row, never from the donations.
A miss is filled here (read-through); publishing after a change is services/progress.py's job."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Aggregate, JSONField, OuterRef, QuerySet, Subquery
from django.db.models.functions import JSONObject
from django.utils import timezone

from campaigns import money, progress_cache
from campaigns.models import Campaign, CampaignTotal, Milestone, campaign_text

CURRENT_SLUG = "current"

# (amount_minor, label) of a campaign's milestones, in increasing amounts.
MilestoneRows = list[tuple[int, str]]


class _JSONRows(Aggregate):
    """Rows as one JSON array, so a campaign comes with its milestones in one query."""

    function = "JSONB_AGG"
    output_field = JSONField()

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="JSON_GROUP_ARRAY", **extra)


def _with_milestones(campaigns: QuerySet[Campaign]) -> QuerySet[Campaign]:
    rows = (
        Milestone.objects.filter(campaign=OuterRef("pk"))
        .values("campaign")
        .annotate(rows=_JSONRows(JSONObject(amount_minor="amount_minor", label="label")))
        .values("rows")
    )
    return campaigns.select_related("totals").annotate(milestone_rows=Subquery(rows, output_field=JSONField()))


def milestone_rows(campaign_id: int) -> MilestoneRows:
    """A campaign's milestones, in increasing amounts (one query)."""
    return list(Milestone.objects.filter(campaign_id=campaign_id).order_by("amount_minor").values_list(
        "amount_minor", "label"))


def _milestones(rows: MilestoneRows, total_minor: int) -> tuple[list[dict[str, Any]], int | None]:
    """The contract's milestones (reached: the total is at or above it now) and the next one's amount."""
    milestones = [
        {"amount_minor": amount, "label": label, "reached": total_minor >= amount} for amount, label in sorted(rows)
    ]
    upcoming = [m["amount_minor"] for m in milestones if not m["reached"]]
    return milestones, (upcoming[0] if upcoming else None)


def _match(campaign: Campaign, total: CampaignTotal | None) -> dict[str, Any] | None:
    """The contract's `match` (its cap, what the gifts used of it and what is left), or None. Its
    used amount is the counter's, so the snapshot holds the match state: a read costs nothing more."""
    if not campaign.has_match:
        return None
    used = total.matched_minor if total else 0
    return {
        "ratio": campaign.match_ratio,
        "cap_minor": campaign.match_cap_minor,
        "used_minor": used,
        "ends_at": timezone.localtime(campaign.match_ends_at).isoformat(),
        # Beyond the contract's four: what the banner says.
        "remaining_minor": campaign.match_left(used),
        "starts_at": timezone.localtime(campaign.match_starts_at).isoformat(),
        "sponsor": campaign.match_sponsor,
    }


def _snapshot(campaign: Campaign, total: CampaignTotal | None, milestones: MilestoneRows) -> dict[str, Any]:
    total_minor = total.total_minor if total else 0
    milestone_list, next_milestone = _milestones(milestones, total_minor)
    version = total.version if total else 0
    updated = total.updated_at if total else campaign.updated_at
    return {
        "campaign_id": campaign.pk,
        "slug": campaign.slug,
        "title": campaign.title,
        "currency": campaign.currency,
        "goal_minor": campaign.goal_minor,
        "total_minor": total_minor,
        # Donor-confirmed promises only (the counter), and never more than the campaign's cap.
        "pending_minor": min(total.pending_minor, campaign.pending_cap_minor) if total else 0,
        "percent": money.percent(total_minor, campaign.goal_minor),
        "donors": total.donor_count if total else 0,
        "donations": total.donation_count if total else 0,
        "status": campaign.status,
        "starts_at": timezone.localtime(campaign.starts_at).isoformat(),
        "ends_at": timezone.localtime(campaign.ends_at).isoformat(),
        "version": version,
        "updated_at": timezone.localtime(max(updated, campaign.updated_at)).isoformat(),
        "milestones": milestone_list,
        "next_milestone_minor": next_milestone,
        "match": _match(campaign, total),
        # The title in every language of settings.LANGUAGES, fallback applied: one JSON for all readers.
        "titles": {code: campaign_text(campaign, code).title for code, _name in settings.LANGUAGES},
        # Not in the JSON contract's example, used by the banner and conditional GETs:
        "locale": campaign.locale,
        # What the embeds draw besides the numbers (banner text, theme, polling, framing).
        "appeal": campaign.appeal,
        # The other languages' title and appeal (templatetags.jauge.progress_context picks the reader's).
        "translations": campaign.translations,
        "poll_interval_seconds": campaign.poll_interval_seconds,
        "color_primary": campaign.color_primary,
        "color_background": campaign.color_background,
        "color_text": campaign.color_text,
        "font_family": campaign.font_family,
        "origins": campaign.origins,
        "etag": f'"{campaign.pk}-{version}-{int(campaign.updated_at.timestamp() * 1000)}"',
    }


def _snapshot_of(campaign: Campaign) -> dict[str, Any]:
    """Snapshot a campaign fetched by `_with_milestones` (its counter and milestones joined)."""
    try:
        total = campaign.totals
    except CampaignTotal.DoesNotExist:
        total = None
    rows = [(row["amount_minor"], row["label"]) for row in campaign.milestone_rows or []]
    return _snapshot(campaign, total, rows)


def progress_build(*, campaign_id: int | None = None, slug: str | None = None) -> dict[str, Any] | None:
    """One campaign's snapshot as the database has it now (one query), not stored."""
    lookup = {"pk": campaign_id} if campaign_id is not None else {"slug": slug}
    campaign = _with_milestones(Campaign.objects.filter(**lookup)).first()
    return None if campaign is None else _snapshot_of(campaign)


def progress_snapshot_of(total: CampaignTotal, milestones: MilestoneRows) -> dict[str, Any]:
    """The snapshot of a counter row, its campaign and milestones as read under the counter's
    lock (milestone edits bump the counter, so they cannot change in between) and just committed."""
    return _snapshot(total.campaign, total, milestones)


def campaign_current_slug() -> str | None:
    """The publication's live campaign: the featured active one, else the one ending soonest."""
    slug = progress_cache.current_slug_get()
    if slug is not None:
        return slug or None
    now = timezone.now()
    campaign = _with_milestones(
        Campaign.objects.filter(status=Campaign.Status.ACTIVE, starts_at__lte=now, ends_at__gt=now)
        .order_by("-featured", "ends_at")
    ).first()
    slug = campaign.slug if campaign else ""
    if campaign is not None:
        # The same query gave the whole campaign: cache its snapshot too, so a cold
        # /embed/current/ costs one query, not two.
        progress_cache.snapshot_store(_snapshot_of(campaign))
    progress_cache.current_slug_put(slug)
    return slug or None


def campaign_progress(*, slug: str) -> dict[str, Any] | None:
    """Progress of a campaign by slug (or `current`), from the cache when it can be."""
    if slug == CURRENT_SLUG:
        slug = campaign_current_slug()
        if slug is None:
            return None
    snapshot = progress_cache.snapshot_get(slug)
    if snapshot is not None:
        return snapshot
    snapshot = progress_build(slug=slug)
    if snapshot is not None:
        progress_cache.snapshot_store(snapshot)
    return snapshot


PUBLIC_PROGRESS_FIELDS = (
    "slug", "title", "currency", "goal_minor", "total_minor", "pending_minor", "percent",
    "donors", "donations", "status", "starts_at", "ends_at", "version", "updated_at",
    "milestones", "next_milestone_minor", "match", "titles",
)


def progress_public(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The progress.json contract's fields, in the contract's order."""
    return {field: snapshot[field] for field in PUBLIC_PROGRESS_FIELDS}
