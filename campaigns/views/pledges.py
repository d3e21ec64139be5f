"""The donor's confirmation of a bank-transfer promise, from the link in the bank-details e-mail.

GET shows a button, POST confirms: a mail scanner that follows links never confirms a promise
for its reader. The service does the writing; this view only maps its outcome to a page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from campaigns import money
from campaigns.models import campaign_text
from campaigns.services import pledge_verification
from campaigns.services.pledge_verification import PledgeLinkError

# What a refused link answers: a tampered link is a bad request, an old one is gone, a used one
# conflicts with what was done.
_STATUS = {"invalid": 400, "expired": 410, "used": 409, "closed": 409}


@never_cache
@require_http_methods(["GET", "POST"])
def pledge_confirm(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    try:
        donation = pledge_verification.pledge_from_token(token=token)
        if donation.campaign.slug != slug:
            raise PledgeLinkError("invalid")
        if request.method == "POST":
            donation = pledge_verification.pledge_confirm_by_donor(token=token)
            outcome, status = "confirmed", 200
        elif donation.pledge_confirmed_at is not None:
            outcome, status = "used", 409
        else:
            outcome, status = "ask", 200
    except PledgeLinkError as exc:
        donation = exc.donation
        outcome, status = exc.reason, _STATUS[exc.reason]
    campaign = donation.campaign if donation is not None else None
    lang = (donation.locale or campaign.locale) if donation is not None else "fr"
    context = {"outcome": outcome, "donation": donation, "campaign": campaign, "lang": lang,
               "text": campaign_text(campaign, lang) if campaign is not None else None}
    if donation is not None:
        context["amount_display"] = money.format_money(donation.amount_minor, donation.currency,
                                                       donation.locale or campaign.locale)
    with translation.override(context["lang"]):
        return render(request, "campaigns/pledge_confirm.html", context, status=status)
