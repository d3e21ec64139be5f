"""Milestones reached: recorded once, the first time the total reaches them, and editors told.

The record is a conditional UPDATE (`reached_at IS NULL AND amount_minor <= total`) made in the
ledger change's own transaction, under its counter's lock: concurrent gifts to a campaign take
that lock in turn, and the WHERE clause makes a second recording a no-op whatever the order.
The e-mail to MILESTONE_EMAILS is sent by a task after the commit, claimed once per milestone
(`notified_at`), as the receipts are.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone, translation

from campaigns import money, queue
from campaigns.models import CampaignTotal, Milestone, campaign_text
from campaigns.selectors.progress import MilestoneRows

logger = logging.getLogger(__name__)

# Milestones reached longer ago than this are never announced (MILESTONE_EMAILS set later, a
# task lost for days): old news in an inbox is noise.
NOTIFY_WINDOW = timedelta(days=1)


def milestones_reach(*, total: CampaignTotal) -> MilestoneRows:
    """Call in the transaction that saved `total`, under its lock: records every milestone its
    total reaches for the first time; returns the campaign's milestones for the snapshot.
    One query, and a second only when a milestone is crossed."""
    rows = list(
        Milestone.objects.filter(campaign_id=total.campaign_id)
        .order_by("amount_minor")
        .values_list("amount_minor", "label", "reached_at")
    )
    if any(reached_at is None and amount <= total.total_minor for amount, _label, reached_at in rows):
        # With nobody to tell, it counts as announced: setting MILESTONE_EMAILS later must not
        # send yesterday's news.
        now = timezone.now()
        reached = Milestone.objects.filter(
            campaign_id=total.campaign_id, reached_at__isnull=True, amount_minor__lte=total.total_minor
        ).update(reached_at=now, notified_at=None if settings.MILESTONE_EMAILS else now)
        if reached and settings.MILESTONE_EMAILS:
            queue.send("send_milestone_emails", total.campaign_id)  # after the commit
    return [(amount, label) for amount, label, _reached_at in rows]


def milestone_emails_send(*, campaign_id: int) -> int:
    """Tell MILESTONE_EMAILS about the campaign's milestones reached and not yet announced;
    the number sent. Each is claimed before it is sent (a second task finds nothing), and the
    claim is released if sending fails, so the task's retry sends it."""
    if not settings.MILESTONE_EMAILS:
        return 0
    now = timezone.now()
    due = Milestone.objects.filter(
        campaign_id=campaign_id, reached_at__gte=now - NOTIFY_WINDOW, notified_at__isnull=True
    ).select_related("campaign").order_by("amount_minor")
    sent = 0
    for milestone in due:
        if not Milestone.objects.filter(pk=milestone.pk, notified_at__isnull=True).update(notified_at=now):
            continue  # another task claimed it
        try:
            _send(milestone)
        except Exception:
            Milestone.objects.filter(pk=milestone.pk).update(notified_at=None)
            raise
        sent += 1
    return sent


def _send(milestone: Milestone) -> None:
    campaign = milestone.campaign
    with translation.override(campaign.locale):
        context = {
            "campaign": campaign,
            "milestone": milestone,
            # Editors read it in the campaign's own language (its own title, never a fallback).
            "text": campaign_text(campaign, campaign.locale),
            "amount": money.format_money(milestone.amount_minor, campaign.currency, campaign.locale),
            "dashboard_url": f"{settings.PUBLIC_URL}/dashboard/{campaign.slug}/",
        }
        subject = render_to_string("emails/milestone_subject.txt", context).strip()
        body = render_to_string("emails/milestone.txt", context)
    send_mail(subject, body, None, settings.MILESTONE_EMAILS)
