"""Reader pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import translation

from campaigns import selectors
from campaigns.models import Campaign
from campaigns.templatetags.jauge import progress_context


def campaign_page(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.exclude(status=Campaign.Status.DRAFT), slug=slug)
    snapshot = selectors.campaign_progress(slug=campaign.slug)
    with translation.override(campaign.locale):
        return render(
            request,
            "campaigns/page.html",
            {"campaign": campaign, "progress": progress_context(snapshot, campaign.locale)},
        )
